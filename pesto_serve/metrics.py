"""Prometheus metrics of one service, in a registry of its own (not the process-global one).

A registry per app keeps two apps in one process (tests) from mixing their counts, and keeps
the library's default process collectors out unless asked for.

prometheus_client (with the http.server, wsgiref and urllib modules it pulls in) is a tenth of
a service's imports: the registry is made by `build()`, which a served service calls in its
start thread, after its port has opened. Requests answered before (health probes) are counted
here and added when it is built, so no request goes uncounted.
"""

import logging
import threading
from typing import Any

from pesto_serve.slots import Slots

log = logging.getLogger(__name__)

PROCESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    """Requests by route and status, processing time, queue depth, jobs by state."""

    def __init__(self, slots: Slots, jobs=None):
        """`jobs`: the job backend of a stateful service (its counts are shared by replicas)."""
        self._slots = slots
        self._jobs = jobs
        self._lock = threading.Lock()
        self._early: dict[tuple, int] = {}
        """Requests answered before `build()`, by labels."""
        self.requests: Any = None
        self.process_seconds: Any = None
        self.registry: Any = None
        """Set last by `build()`: not None means the metrics above exist."""

    def build(self) -> None:
        """Make the registry and its metrics (once; any thread), with the early counts."""
        if self.registry is not None:
            return
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        with self._lock:
            if self.registry is not None:
                return
            registry = CollectorRegistry()
            self.requests = Counter(
                "pesto_http_requests",
                "HTTP requests answered, by route, method and status",
                ("route", "method", "status"),
                registry=registry,
            )
            self.process_seconds = Histogram(
                "pesto_process_seconds",
                "Time spent in the project's process() per call",
                buckets=PROCESS_BUCKETS,
                registry=registry,
            )
            slots = self._slots
            Gauge(
                "pesto_queue_depth", "Requests waiting for a processing slot", registry=registry
            ).set_function(lambda: slots.waiting)
            Gauge("pesto_slots_busy", "Processing slots in use", registry=registry).set_function(
                lambda: slots.running
            )
            Gauge("pesto_slots", "Processing slots configured", registry=registry).set(slots.count)
            if self._jobs is not None:
                registry.register(_JobsCollector(self._jobs))
            for labels, count in self._early.items():
                self.requests.labels(*labels).inc(count)
            self._early.clear()
            self.registry = registry

    def count_request(self, labels: tuple) -> Any:
        """Count one request answered with `labels` (route, method, status); the counter for
        them, which the caller may keep and `.inc()` itself, or None before `build()`."""
        if self.registry is None:
            with self._lock:
                if self.registry is None:
                    self._early[labels] = self._early.get(labels, 0) + 1
                    return None
        counter = self.requests.labels(*labels)
        counter.inc()
        return counter

    @property
    def content_type(self) -> str:
        from prometheus_client.exposition import CONTENT_TYPE_LATEST

        return CONTENT_TYPE_LATEST

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        self.build()
        return generate_latest(self.registry)


class _JobsCollector:
    """`pesto_jobs{state=...}` and `pesto_jobs_waiting`, read from the job store when scraped.

    On Redis these are the shared queue's figures, the same from every replica: what an
    autoscaler reads. With the store unreachable they are left out (the scrape still works).
    """

    def __init__(self, jobs):
        self.jobs = jobs

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        from pesto_serve.jobs import StoreUnavailable

        try:
            counts = self.jobs.counts()
        except StoreUnavailable as error:
            log.warning("metrics without job counts: %s", error.message)
            return
        family = GaugeMetricFamily("pesto_jobs", "Stateful jobs by state (all replicas)", labels=("state",))
        for state, count in counts.items():
            family.add_metric((state,), count)
        yield family
        yield GaugeMetricFamily(
            "pesto_jobs_waiting",
            "Jobs accepted and not yet started, in the shared queue",
            value=counts.get("PENDING", 0),
        )

    def describe(self):
        return []
