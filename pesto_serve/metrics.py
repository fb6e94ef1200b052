"""Prometheus metrics of one service, in a registry of its own (not the process-global one).

A registry per app keeps two apps in one process (tests) from mixing their counts, and keeps
the library's default process collectors out unless asked for.
"""

import logging

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from pesto_serve.slots import Slots

log = logging.getLogger(__name__)

PROCESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    """Requests by route and status, processing time, queue depth, jobs by state."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, slots: Slots, jobs=None):
        """`jobs`: the job backend of a stateful service (its counts are shared by replicas)."""
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "pesto_http_requests",
            "HTTP requests answered, by route, method and status",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.process_seconds = Histogram(
            "pesto_process_seconds",
            "Time spent in the project's process() per call",
            buckets=PROCESS_BUCKETS,
            registry=self.registry,
        )
        Gauge(
            "pesto_queue_depth", "Requests waiting for a processing slot", registry=self.registry
        ).set_function(lambda: slots.waiting)
        Gauge(
            "pesto_slots_busy", "Processing slots in use", registry=self.registry
        ).set_function(lambda: slots.running)
        Gauge(
            "pesto_slots", "Processing slots configured", registry=self.registry
        ).set(slots.count)
        if jobs is not None:
            self.registry.register(_JobsCollector(jobs))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _JobsCollector:
    """`pesto_jobs{state=...}` and `pesto_jobs_waiting`, read from the job store when scraped.

    On Redis these are the shared queue's figures, the same from every replica: what an
    autoscaler reads. With the store unreachable they are left out (the scrape still works).
    """

    def __init__(self, jobs):
        self.jobs = jobs

    def collect(self):
        from pesto_serve.jobs import StoreUnavailable

        try:
            counts = self.jobs.counts()
        except StoreUnavailable as error:
            log.warning("metrics without job counts: %s", error.message)
            return
        family = GaugeMetricFamily("pesto_jobs", "Stateful jobs by state (all replicas)",
                                   labels=("state",))
        for state, count in counts.items():
            family.add_metric((state,), count)
        yield family
        yield GaugeMetricFamily(
            "pesto_jobs_waiting", "Jobs accepted and not yet started, in the shared queue",
            value=counts.get("PENDING", 0),
        )

    def describe(self):
        return []
