"""Prometheus metrics of one service, in a registry of its own (not the process-global one).

A registry per app keeps two apps in one process (tests) from mixing their counts, and keeps
the library's default process collectors out unless asked for.
"""

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from pesto_serve.slots import Slots

PROCESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    """Requests by route and status, processing time, queue depth, jobs by state."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, slots: Slots, job_counts: Callable[[], dict[str, int]] | None = None):
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
        if job_counts is not None:
            self.registry.register(_JobsCollector(job_counts))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _JobsCollector:
    """`pesto_jobs{state=...}`, counted from the job store when scraped."""

    def __init__(self, job_counts: Callable[[], dict[str, int]]):
        self.job_counts = job_counts

    def collect(self):
        family = GaugeMetricFamily("pesto_jobs", "Stateful jobs by state", labels=("state",))
        for state, count in self.job_counts().items():
            family.add_metric((state,), count)
        yield family

    def describe(self):
        return []
