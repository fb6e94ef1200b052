"""One PESTO service: the project's `Process` behind its payloads, slots and (stateful) jobs.

The routes of `app.py` call these plain methods, one call each, which are testable without
HTTP: the job rules (what a client may do with a job in which state) live here. Everything
that does not depend on a request (validators, describe, OpenAPI) is built here once.
"""

import collections
import hashlib
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from pesto_pack.errors import PestoError
from pesto_pack.plugins import Registry, default_registry
from pesto_pack.project import ServiceApi, check_config
from pesto_serve.describe import describe_without_links, version_document
from pesto_serve.errors import AnswerError, ServiceError
from pesto_serve.jobs import (
    DONE,
    ERROR,
    FINISHED,
    Claimed,
    Job,
    JobBackend,
    JobCancelled,
    Page,
    StoreUnavailable,
    Submission,
    open_backend,
)
from pesto_serve.jobs.model import JOB_ID, MAX_IDEMPOTENCY_KEY
from pesto_serve.jobs.workers import Workers
from pesto_serve.loader import LoadedProcess, load_process
from pesto_serve.metrics import Metrics
from pesto_serve.openapi import openapi_document
from pesto_serve.payloads import Payloads, parse_json
from pesto_serve.settings import Settings
from pesto_serve.slots import RETRY_AFTER_SECONDS, Slots

log = logging.getLogger(__name__)


class Service:
    """What a running service knows and does, whatever serves it over HTTP."""

    def __init__(
        self,
        api: ServiceApi,
        settings: Settings,
        registry: Registry | None = None,
        check_at_start: str | None = None,
    ):
        """`check_at_start`: the api folder as the user knows it (`pesto/api`, `/etc/pesto`),
        when the config check against config_schema.json was deferred (`load(...,
        defer_config_check=True)`): it runs in `start()` with the body validators, both of
        which import jsonschema, so that a served service's port opens first. None: the
        validators are built here."""
        registry = registry or default_registry()
        definitions = api.definitions(registry)
        self.api = api
        self.settings = settings
        self.payloads = Payloads.build(
            api, registry, settings.decode_settings, validators=check_at_start is None
        )
        self._check_at_start = check_at_start
        self._definitions = definitions
        self.describe = describe_without_links(api, definitions)
        self.version = version_document(api)
        self.openapi = openapi_document(api, definitions, settings.webhook_allowlist)
        self.slots = Slots(settings.slots, settings.queue_size)
        self.jobs: JobBackend | None = _open_jobs(settings) if api.asynchronous else None
        self.webhooks = None
        if self.jobs is not None and settings.webhook_allowlist:
            from pesto_serve.webhooks import WebhookSender

            if not settings.webhook_secret:
                raise PestoError(
                    "PESTO_WEBHOOK_ALLOWLIST is set but PESTO_WEBHOOK_SECRET is not: webhooks "
                    "are signed; set a secret (whsec_ followed by base64, e.g. from "
                    "`python -c \"import base64,os;print('whsec_'+base64.b64encode(os.urandom(24)).decode())\"`)"
                )
            self.webhooks = WebhookSender(
                self.jobs, settings.webhook_secret, settings.webhook_max_attempts, settings.webhook_backoff
            )
        self.metrics = Metrics(self.slots, self.jobs)
        self.ready = False
        """True once on_start() has returned (plain flags: read on every request)."""
        self.stopping = False
        self.leaving = False
        """After SIGTERM, during the drain delay: out of the balancer's pool, still working."""
        self._process: LoadedProcess | None = None
        self._process_lock: AbstractContextManager = nullcontext()
        self._parallel_calls = 1
        self._calls: dict[object, float] = {}
        """When each process() call running now started (time.monotonic())."""
        self._workers: Workers | None = None
        self._decoded: collections.OrderedDict[str, dict] = collections.OrderedDict()
        """Inputs decoded when a job was submitted here, kept to run it without decoding again."""
        self._decoded_lock = threading.Lock()
        self._cancelled: set[str] = set()
        """Jobs running here that a client cancelled through this replica."""

    # -- life cycle --------------------------------------------------------------------------
    def start(self, before_on_start: Callable[[], None] | None = None) -> None:
        """Import the project's `Process` and run its `on_start()`; ready once it returns.

        `before_on_start`: called once the project is imported and checked (the server starts
        the rest of its worker threads there, so that a broken process.py fails as early).

        The deferred checks (`check_at_start`) come after the import (a broken process.py is
        reported as soon as before) and before on_start(): a `ProjectError` from them stops
        the start as a failing on_start() does, and no request is decoded without validators.
        The metrics' registry is made here too (prometheus_client: after the port opens)."""
        started = time.perf_counter()
        loaded = load_process(self.settings.project_dir, self.payloads.input.properties)
        self.metrics.build()
        if self._check_at_start is not None:
            check_config(self.api, self._check_at_start)
            self.payloads = self.payloads.with_validators(self._definitions)
            self._check_at_start = None
        if before_on_start is not None:
            before_on_start()
        if loaded.has_on_start:
            log.info("running Process.on_start()")
            loaded.on_start()
        self._process_lock = nullcontext() if loaded.thread_safe else threading.Lock()
        self._parallel_calls = self.slots.count if loaded.thread_safe else 1
        self._process = loaded
        if self.jobs is not None:
            # Through the slots: the metrics count running jobs as busy slots, and a stopping
            # server sees them running.
            self._workers = Workers(
                self.jobs,
                lambda claimed: self.slots.run(lambda: self._run_job(claimed)),
                self._parallel_calls,
            )
            self._workers.start()
            if self.webhooks is not None:
                self.webhooks.start()
        self.ready = True
        log.info(
            "ready in %.2f s (%d slot(s), queue %d%s)",
            time.perf_counter() - started,
            self.slots.count,
            self.slots.queue_size,
            ", process() is thread-safe" if loaded.thread_safe else "",
        )

    def stop(self) -> None:
        """Refuse new work (ready answers 503) and claim no more jobs; admitted work goes on."""
        self.stopping = True
        if self._workers is not None:
            self._workers.stop()

    def release_jobs(self) -> int:
        """The process is about to exit with jobs running: give them PESTO_GRACE_PERIOD to
        finish, then hand the others back to the queue, so that another replica runs them at
        once rather than after the visibility timeout; how many were handed back."""
        if self._workers is None:
            return 0
        deadline = time.monotonic() + self.settings.grace_period
        if self._workers.running:
            log.info(
                "waiting up to %g s for %d running job(s) to finish",
                self.settings.grace_period,
                len(self._workers.running),
            )
        while self._workers.running and time.monotonic() < deadline:
            time.sleep(0.05)
        running = list(self._workers.running.values())
        if running:
            try:
                self.jobs.release(running)
                log.warning("%d job(s) still running handed back to the queue", len(running))
            except StoreUnavailable as error:
                log.warning(
                    "%d running job(s) not handed back (%s): they run again after "
                    "PESTO_JOBS_VISIBILITY_TIMEOUT",
                    len(running),
                    error.message,
                )
        return len(running)

    def close(self) -> None:
        """Stop, wait briefly for the job threads, release the job store (tests, embedding)."""
        self.stop()
        if self._workers is not None:
            self._workers.stop(timeout=5.0)
        if self.webhooks is not None:
            self.webhooks.stop()
        if self.jobs is not None:
            self.jobs.close()

    def leave(self) -> None:
        """Ready answers 503 from now on while work is still taken: a balancer that finds
        replicas by health checks stops sending here before the service stops accepting
        (the drain delay after SIGTERM, PESTO_DRAIN_DELAY)."""
        self.leaving = True

    def check_listed(self) -> None:
        """What `GET /ready` answers: a 503 once leaving, else as `check_ready()`."""
        if self.leaving:
            raise ServiceError(
                503,
                "the service is shutting down; retry on another instance",
                headers={"Retry-After": RETRY_AFTER_SECONDS},
            )
        self.check_ready()

    def check_ready(self, store: bool = True) -> None:
        """A 503 unless the service can take work now (`store`: the job store answers too)."""
        if self.stopping:
            raise ServiceError(
                503,
                "the service is shutting down; retry on another instance",
                headers={"Retry-After": RETRY_AFTER_SECONDS},
            )
        if not self.ready:
            raise ServiceError(
                503,
                "the service is starting (Process.on_start() is running); retry when "
                "GET /api/v1/ready answers 200",
                headers={"Retry-After": RETRY_AFTER_SECONDS},
            )
        stuck = self._stuck()
        if stuck:
            raise ServiceError(503, stuck, headers={"Retry-After": RETRY_AFTER_SECONDS})
        if store and self.jobs is not None:
            self.jobs.check()

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
    def submit_job(
        self,
        body: bytes,
        correlation_id: str | None = None,
        webhook: str | None = None,
        idempotency_key: str | None = None,
        base_url: str = "",
    ) -> tuple[Job, bool]:
        """Check and store a request as a job, durably, before it is answered 202.

        The inputs are decoded now (a bad request is the caller's 400, at once) and kept to run
        the job here; the stored body lets any replica run it. (job, False): the
        Idempotency-Key named a job submitted before.
        """
        self.check_ready(store=False)  # the submit itself answers 503 when the store cannot
        if idempotency_key is not None:
            _check_idempotency_key(idempotency_key)
        if webhook is not None:
            from pesto_serve.webhooks import check_webhook_url

            check_webhook_url(webhook, self.settings.webhook_allowlist)
        values = self.payloads.decode(parse_json(body))
        submission = Submission(
            body=body,
            body_digest=hashlib.sha256(body).hexdigest(),
            correlation_id=correlation_id,
            idempotency_key=idempotency_key,
            webhook=webhook,
            base_url=base_url,
        )
        job, created = self.jobs.submit(submission, self.slots.count + self.slots.queue_size)
        if created:
            with self._decoded_lock:
                self._decoded[job.id] = values
                while len(self._decoded) > max(64, 2 * (self.slots.count + self.slots.queue_size)):
                    self._decoded.popitem(last=False)
        return job, created

    def job(self, job_id: str) -> Job:
        """The job, or a 400 (malformed id) or 404 (no such job)."""
        if not JOB_ID.match(job_id):
            raise ServiceError(
                400,
                f"{job_id!r} is not a job id: job ids are 16 to 64 letters, digits, - or _ "
                "(the jobId a POST answered)",
                "job_id",
            )
        job = self.jobs.get(job_id)
        if job is None:
            raise ServiceError(
                404,
                f"no job {job_id!r} (it never existed, was deleted, or expired after "
                f"PESTO_JOBS_RETENTION, {self.settings.jobs_retention:g} s)",
            )
        return job

    def finished_job(self, job_id: str) -> Job:
        """The job if it is DONE; a 409 saying what to do otherwise."""
        job = self.job(job_id)
        if job.status != DONE:
            reason = f"it ended: {job.error}" if job.error else "retry once its status is DONE"
            raise ServiceError(409, f"job {job_id} is {job.status}, it has no results; {reason}")
        return job

    def job_result(self, job_id: str, key: str, index: int | None = None) -> tuple[Job, Any]:
        """A DONE job's result `key` (item `index` of a list): a `Result`, or a list of them."""
        job, stored = self._stored_result(job_id, key)
        if index is None:
            return job, stored if isinstance(stored, list) else self.jobs.read(job, stored)
        if not isinstance(stored, list) or not 0 <= index < len(stored):
            count = len(stored) if isinstance(stored, list) else "no"
            raise ServiceError(404, f"result {key!r} of job {job_id} has {count} items; no item {index}", key)
        return job, self.jobs.read(job, stored[index])

    def job_page(self, limit: str | None, cursor: str | None) -> Page:
        """A page of the jobs, oldest first; `cursor` is the previous page's last job id."""
        try:
            count = DEFAULT_PAGE if limit is None else int(limit)
        except ValueError:
            count = 0
        if not 1 <= count <= MAX_PAGE:
            raise ServiceError(
                400, f"limit must be a whole number from 1 to {MAX_PAGE}, not {limit!r}", "limit"
            )
        if cursor is not None and not JOB_ID.match(cursor):
            raise ServiceError(
                400,
                f"cursor {cursor!r} is not a job id; pass the `next` link of the previous page as it is",
                "cursor",
            )
        return self.jobs.page(count, cursor)

    def delete_job(self, job_id: str) -> tuple[Job, bool]:
        """DELETE: a finished job is deleted (True); an unfinished one is cancelled (False).

        A PENDING job ends CANCELLED at once; a RUNNING one, on whichever replica runs it, at
        its next progress report or when process() returns (its result is discarded).
        """
        job = self.job(job_id)
        if job.status in FINISHED:
            self.jobs.delete(job.id)
            self._decoded.pop(job.id, None)
            return job, True
        cancelled = self.jobs.cancel(job.id)
        if cancelled is None or cancelled.status in (DONE, ERROR):
            # It ended (or was deleted) between the read and the cancel: as for a finished job.
            self.jobs.delete(job.id)
            self._decoded.pop(job.id, None)
            return cancelled or job, True
        if cancelled.status in FINISHED:
            self._decoded.pop(job.id, None)
        if self._workers is not None and job.id in self._workers.running:
            self._cancelled.add(job.id)
        return cancelled, False

    def delete_job_result(self, job_id: str, key: str) -> None:
        job, _ = self._stored_result(job_id, key)
        self.jobs.delete_result(job, key)

    def _stored_result(self, job_id: str, key: str) -> tuple[Job, Any]:
        job = self.finished_job(job_id)
        if key not in job.results:
            known = ", ".join(job.results) or "none"
            raise ServiceError(404, f"job {job.id} has no result {key!r}; its results: {known}", key)
        return job, job.results[key]

    def _run_job(self, claimed: Claimed) -> None:
        """Run one claimed job and store its outcome (retrying while the store is away)."""
        job = claimed.job
        values = self._decoded.pop(job.id, None)
        outcome: dict[str, Any] = {}
        try:
            if values is None:
                values = self.payloads.decode(parse_json(claimed.body))
            answer = self._answer(values, progress=self._progress_reporter(job.id))
            outcome["documents"] = self.payloads.result_documents(answer)
        except JobCancelled:
            outcome["cancelled"] = True
        except ServiceError as error:
            outcome["error"] = error.message
        except Exception as error:
            log.exception("job %s: storing its results failed", job.id)
            outcome["error"] = f"storing the results failed: {type(error).__name__}: {error}"
        finally:
            self._cancelled.discard(job.id)
        self._store_outcome(claimed, outcome)

    def _store_outcome(self, claimed: Claimed, outcome: dict[str, Any]) -> None:
        delay = 0.1
        while True:
            try:
                finished = self.jobs.finish(
                    claimed,
                    outcome.get("documents"),
                    error=outcome.get("error"),
                    cancelled=outcome.get("cancelled", False),
                )
                break
            except StoreUnavailable as error:
                if self.stopping:
                    log.error(
                        "job %s: its outcome is not stored (%s); another replica will run it again",
                        claimed.job.id,
                        error.message,
                    )
                    return
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        if finished is None:
            log.info(
                "job %s had already ended (a run elsewhere finished it first): this run's outcome is dropped",
                claimed.job.id,
            )
        elif self.webhooks is not None and finished.webhook:
            self.webhooks.wake()

    def _progress_reporter(self, job_id: str):
        """The `progress(percent)` callable process() gets: it stores the progress, at most
        every PROGRESS_EVERY seconds, and raises JobCancelled once the job is cancelled."""
        last = [0.0, -1]

        def progress(percent: float) -> None:
            if job_id in self._cancelled:
                raise JobCancelled(job_id)
            if isinstance(percent, bool) or not isinstance(percent, (int, float)):
                raise TypeError(f"progress() takes a number from 0 to 100, not {percent!r}")
            value = max(0, min(100, int(percent)))
            moment = time.monotonic()
            if value == last[1] or (moment - last[0] < PROGRESS_EVERY and value < 100):
                return
            last[0], last[1] = moment, value
            try:
                cancel = self.jobs.report_progress(job_id, value)
            except StoreUnavailable as error:
                log.warning("job %s: progress not stored: %s", job_id, error.message)
                return
            if cancel:
                raise JobCancelled(job_id)

        return progress

    # -- both --------------------------------------------------------------------------------
    def _answer(self, values: dict[str, Any], progress=None) -> dict[str, Any]:
        try:
            return self.payloads.encode(self._call_process(values, progress))
        except AnswerError as error:
            log.error("%s", error.message)
            raise

    def _call_process(self, values: dict[str, Any], progress=None) -> Any:
        with self._process_lock:
            started = time.perf_counter()
            call = object()
            self._calls[call] = time.monotonic()
            try:
                return self._process.process(values, progress)
            except Exception as error:
                log.exception("the service's process() raised %s", type(error).__name__)
                raise ServiceError(
                    500, f"the service's process() raised {type(error).__name__}: {error}"
                ) from error
            finally:
                del self._calls[call]
                self.metrics.process_seconds.observe(time.perf_counter() - started)


DEFAULT_PAGE = 100
MAX_PAGE = 1000
PROGRESS_EVERY = 0.2
"""Seconds between two progress writes to the store (a report in a tight loop costs nothing)."""


def _check_idempotency_key(key: str) -> None:
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable() or not key.isascii():
        raise ServiceError(
            400,
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters "
            f"(this one has {len(key)}); a UUID is a good key",
            "Idempotency-Key",
        )


def _open_jobs(settings: Settings) -> JobBackend:
    url = settings.jobs_store_url
    folder = settings.jobs_folder() if url.startswith("file:") else None
    results_dir = None
    if folder is None and settings.jobs_results_dir is not None:
        results_dir = settings.jobs_results_dir
        try:
            results_dir.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=results_dir).close()
        except OSError as error:
            raise PestoError(
                f"cannot write in PESTO_JOBS_RESULTS_DIR {results_dir} ({error}); mount the "
                "shared results volume read-write, or unset it to keep results in Redis"
            ) from None
    jobs = open_backend(
        url,
        retention=settings.jobs_retention,
        visibility_timeout=settings.jobs_visibility_timeout,
        max_attempts=settings.jobs_max_attempts,
        folder=folder,
        results_dir=results_dir,
        inline_bytes=settings.jobs_inline_bytes,
    )
    if folder is not None:
        requeued = jobs.recover()
        if requeued:
            log.warning("%d job(s) a previous run left unfinished are queued again", requeued)
    return jobs
