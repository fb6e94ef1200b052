"""One PESTO service: the project's `Process` behind its payloads, slots and (stateful) jobs.

The routes of `app.py` call these plain methods, which are testable without HTTP. Everything
that does not depend on a request (validators, describe, OpenAPI) is built here once.
"""

import logging
import threading
import time
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from pesto_pack.plugins import Registry, default_registry
from pesto_pack.project import ServiceApi
from pesto_serve.describe import describe_without_links, version_document
from pesto_serve.errors import AnswerError, ServiceError
from pesto_serve.jobs import Job, JobStore
from pesto_serve.loader import LoadedProcess, load_process
from pesto_serve.metrics import Metrics
from pesto_serve.openapi import openapi_document
from pesto_serve.payloads import Payloads
from pesto_serve.settings import Settings
from pesto_serve.slots import RETRY_AFTER_SECONDS, Slots

log = logging.getLogger(__name__)


class Service:
    """What a running service knows and does, whatever serves it over HTTP."""

    def __init__(self, api: ServiceApi, settings: Settings, registry: Registry | None = None):
        registry = registry or default_registry()
        definitions = api.definitions(registry)
        self.api = api
        self.settings = settings
        self.payloads = Payloads.build(api, registry, settings.decode_settings)
        self.describe = describe_without_links(api, definitions)
        self.version = version_document(api)
        self.openapi = openapi_document(api, definitions)
        self.slots = Slots(settings.slots, settings.queue_size)
        self.jobs = JobStore(settings.jobs_folder()) if api.asynchronous else None
        if self.jobs is not None:
            interrupted = self.jobs.recover()
            if interrupted:
                log.warning("%d job(s) of a previous run were interrupted: marked ERROR", interrupted)
        self.metrics = Metrics(self.slots, self.jobs.counts if self.jobs else None)
        self.ready = False
        """True once on_start() has returned (plain flags: read on every request)."""
        self.stopping = False
        self._process: LoadedProcess | None = None
        self._process_lock: AbstractContextManager = nullcontext()
        self._parallel_calls = 1
        self._calls: dict[object, float] = {}
        """When each process() call running now started (time.monotonic())."""
        self._futures: dict[str, Future] = {}

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Import the project's `Process` and run its `on_start()`; ready once it returns."""
        started = time.perf_counter()
        loaded = load_process(self.settings.project_dir, self.payloads.input.properties)
        if loaded.has_on_start:
            log.info("running Process.on_start()")
            loaded.on_start()
        self._process_lock = nullcontext() if loaded.thread_safe else threading.Lock()
        self._parallel_calls = self.slots.count if loaded.thread_safe else 1
        self._process = loaded
        self.ready = True
        log.info("ready in %.2f s (%d slot(s), queue %d%s)", time.perf_counter() - started,
                 self.slots.count, self.slots.queue_size,
                 ", process() is thread-safe" if loaded.thread_safe else "")

    def stop(self) -> None:
        """Refuse new work (ready answers 503); admitted work goes on."""
        self.stopping = True

    def check_ready(self) -> None:
        """A 503 unless the service can take work now."""
        if self.stopping:
            raise ServiceError(
                503, "the service is shutting down; retry on another instance",
                headers={"Retry-After": RETRY_AFTER_SECONDS},
            )
        if not self.ready:
            raise ServiceError(
                503, "the service is starting (Process.on_start() is running); retry when "
                "GET /api/v1/ready answers 200",
                headers={"Retry-After": RETRY_AFTER_SECONDS},
            )
        stuck = self._stuck()
        if stuck:
            raise ServiceError(503, stuck, headers={"Retry-After": RETRY_AFTER_SECONDS})

    def _stuck(self) -> str | None:
        """Why no request can be answered in time: every process() call that can run at once
        has run past PESTO_PROCESS_TIMEOUT, and Python cannot stop them. Ready answers 503 (the
        image's health check fails) until one returns. Stateful jobs have no such limit."""
        timeout = self.settings.process_timeout
        if not timeout or self.jobs is not None:
            return None
        now = time.monotonic()
        overdue = sum(1 for started in list(self._calls.values()) if now - started > timeout)
        if overdue < self._parallel_calls:
            return None
        return (
            f"every process() call this service can run at once ({self._parallel_calls}) has run "
            f"for more than PESTO_PROCESS_TIMEOUT ({timeout:g} s); it answers again once one "
            "returns. If process() hangs, restart the service"
        )

    # -- stateless ---------------------------------------------------------------------------
    def process_now(self, body: Any) -> dict[str, Any]:
        """Decode, process and encode one request; the JSON answer."""
        self.check_ready()
        values = self.payloads.decode(body)
        return self.slots.run(lambda: self._answer(values), self.settings.process_timeout)

    # -- stateful ----------------------------------------------------------------------------
    def submit_job(self, body: Any) -> Job:
        """Decode a request now (errors are the caller's, at once) and queue it as a job."""
        self.check_ready()
        values = self.payloads.decode(body)
        job = self.jobs.create()
        try:
            future = self.slots.submit(lambda: self._run_job(job.id, values))
        except ServiceError:
            self.jobs.delete(job.id)
            raise
        self._futures[job.id] = future
        future.add_done_callback(lambda _: self._futures.pop(job.id, None))
        return job

    def delete_job(self, job: Job) -> None:
        """Delete a job and its results; a waiting job is cancelled, a running one is kept."""
        future = self._futures.get(job.id)
        if future is not None and not future.done() and not future.cancel():
            raise ServiceError(
                409, f"job {job.id} is running; delete it once its status is DONE or ERROR"
            )
        self.jobs.delete(job.id)

    def _run_job(self, job_id: str, values: dict[str, Any]) -> None:
        self.jobs.running(job_id)
        try:
            self.jobs.done(job_id, self.payloads.result_documents(self._answer(values)))
        except ServiceError as error:
            self.jobs.failed(job_id, error.message)
        except Exception as error:
            log.exception("job %s: storing its results failed", job_id)
            self.jobs.failed(job_id, f"storing the results failed: {type(error).__name__}: {error}")

    # -- both --------------------------------------------------------------------------------
    def _answer(self, values: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.payloads.encode(self._call_process(values))
        except AnswerError as error:
            log.error("%s", error.message)
            raise

    def _call_process(self, values: dict[str, Any]) -> Any:
        with self._process_lock:
            started = time.perf_counter()
            call = object()
            self._calls[call] = time.monotonic()
            try:
                return self._process.process(values)
            except Exception as error:
                log.exception("the service's process() raised %s", type(error).__name__)
                raise ServiceError(
                    500, f"the service's process() raised {type(error).__name__}: {error}"
                ) from error
            finally:
                del self._calls[call]
                self.metrics.process_seconds.observe(time.perf_counter() - started)
