"""Around the app: one log line and one metric per request, whatever answered it."""

import time
from collections.abc import Callable, Iterable
from typing import Any

from pesto_serve.logs import log_access
from pesto_serve.metrics import Metrics


class Observed:
    """A WSGI middleware that logs method, path, status and duration, and counts requests.

    Routes are counted by their rule (`/api/v1/jobs/<job_id>/status`), not their path, so the
    metric does not grow with every job id; requests no route matched count as `unmatched`.
    """

    def __init__(self, app: Callable, metrics: Metrics):
        self.app = app
        self.metrics = metrics
        self._counters: dict[tuple, Any] = {}

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        statuses = []

        def capture(status: str, headers: list, exc_info=None):
            statuses.append(status)
            return start_response(status, headers, exc_info)

        body = self.app(environ, capture)
        duration_ms = (time.perf_counter() - started) * 1000
        status = int(statuses[-1][:3]) if statuses else 500
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("bottle.raw_path") or environ.get("PATH_INFO", "")
        route = environ.get("bottle.route")
        labels = (route.rule if route else "unmatched", method, status)
        counter = self._counters.get(labels)
        if counter is None:
            counter = self._counters.setdefault(labels, self.metrics.requests.labels(*labels))
        counter.inc()
        log_access(method, path, status, duration_ms)
        return body
