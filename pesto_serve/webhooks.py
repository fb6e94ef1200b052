"""Webhooks: a job may name a URL that is told, once, when the job ends.

The URL must be under a prefix of `PESTO_WEBHOOK_ALLOWLIST` (no request makes the service call
an arbitrary host), and redirects are not followed. Each call is signed per the Standard
Webhooks spec (`webhook-id`, `webhook-timestamp`, `webhook-signature` headers, the
`standardwebhooks` package) with `PESTO_WEBHOOK_SECRET`. A failed call (no answer, or not 2xx)
is tried again with exponential backoff, up to `PESTO_WEBHOOK_MAX_ATTEMPTS`; the delivery state
is kept in the job store, so retries survive a restart and any replica may make them, and the
job's status shows it. The `webhook-id` is the same on every retry: a receiver that saw it
already can drop the repeat.
"""

import base64
import binascii
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from urllib.parse import urlsplit

from pesto_pack.errors import PestoError
from pesto_pack.types.images import is_under
from pesto_serve.errors import ServiceError
from pesto_serve.jobs.documents import job_document
from pesto_serve.jobs.model import Job, JobBackend, StoreUnavailable

log = logging.getLogger(__name__)

HEADER = "X-Webhook-URL"
"""The request header that names a job's webhook."""
MAX_URL = 2048
SEND_TIMEOUT = 10.0
LEASE_SECONDS = 30.0
"""A replica sending a delivery holds it this long: no other replica sends it meanwhile."""
MAX_BACKOFF = 600.0


def check_webhook_url(url: str, allowlist: tuple[str, ...]) -> str:
    """The webhook URL a request names, or a 400 saying why it is refused."""
    if not allowlist:
        raise ServiceError(
            400,
            "this service sends no webhooks (its operator has set no "
            "PESTO_WEBHOOK_ALLOWLIST); poll the job's status URL instead",
            HEADER,
        )
    parts = urlsplit(url)
    if len(url) > MAX_URL or parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ServiceError(
            400,
            f"{HEADER} must be an http:// or https:// URL of at most {MAX_URL} characters",
            HEADER,
        )
    if not any(is_under(url, prefix) for prefix in allowlist):
        raise ServiceError(
            400,
            f"{HEADER} {url!r} is not under an allowed prefix "
            f"(PESTO_WEBHOOK_ALLOWLIST: {', '.join(allowlist)}); use one of them",
            HEADER,
        )
    return url


MIN_SECRET_BYTES = 24
"""The Standard Webhooks spec: secrets of 24 to 64 random bytes."""


def _signer(webhook_class, secret: str):
    """The signer of `secret`, or a PestoError saying what a valid secret looks like."""
    try:
        raw = base64.b64decode(secret.removeprefix("whsec_") + "==")
    except binascii.Error:
        raw = b""
    if len(raw) < MIN_SECRET_BYTES:
        raise PestoError(
            f"PESTO_WEBHOOK_SECRET must be whsec_ followed by the base64 of {MIN_SECRET_BYTES} "
            'to 64 random bytes (Standard Webhooks); make one with `python -c "import base64,'
            "os;print('whsec_'+base64.b64encode(os.urandom(32)).decode())\"`"
        )
    return webhook_class(secret)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a 3xx is a failed delivery: following it could leave the allow-list


class WebhookSender:
    """Sends the due deliveries of the job store; one thread per replica."""

    def __init__(self, jobs: JobBackend, secret: str, max_attempts: int, backoff: float):
        try:  # imported only when webhooks are configured
            from standardwebhooks import Webhook
        except ModuleNotFoundError:
            raise PestoError(
                "PESTO_WEBHOOK_ALLOWLIST is set but the standardwebhooks package is not "
                "installed: install pesto-toolkit[webhooks] (a stateful image has it)"
            ) from None

        self.jobs = jobs
        self.signer = _signer(Webhook, secret)
        self.max_attempts = max_attempts
        self.backoff = backoff
        self._opener = urllib.request.build_opener(_NoRedirects)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pesto-webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        """A job just ended: look for its delivery now rather than at the next tick."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.jobs.due_delivery(LEASE_SECONDS)
            except StoreUnavailable as error:
                log.warning("webhooks wait for the job store: %s", error.message)
                job = None
                self._stop.wait(1.0)
            except Exception:
                log.exception("webhooks: reading the due deliveries failed")
                job = None
                self._stop.wait(1.0)
            if job is None:
                self._wake.wait(0.25)
                self._wake.clear()
                continue
            self.deliver(job)

    def deliver(self, job: Job) -> None:
        """One attempt at telling the job's webhook; its outcome stored in the job."""
        delivery = dict(job.delivery or {"state": "pending", "attempts": 0})
        attempts = int(delivery.get("attempts", 0)) + 1
        error = self._send(job)
        stamp = time.time()
        delivery.update(attempts=attempts, lastAttempt=stamp)
        if error is None:
            delivery.update(state="delivered", lastError=None, nextAttempt=None)
            next_attempt = None
            log.info("job %s: webhook delivered (attempt %d)", job.id, attempts)
        elif attempts >= self.max_attempts:
            delivery.update(state="failed", lastError=error, nextAttempt=None)
            next_attempt = None
            log.error("job %s: webhook failed %d times, giving up: %s", job.id, attempts, error)
        else:
            next_attempt = stamp + min(self.backoff * 2 ** (attempts - 1), MAX_BACKOFF)
            delivery.update(state="retrying", lastError=error, nextAttempt=next_attempt)
            log.warning(
                "job %s: webhook attempt %d failed (%s); next in %.1f s",
                job.id,
                attempts,
                error,
                next_attempt - stamp,
            )
        try:
            self.jobs.set_delivery(job.id, delivery, next_attempt)
        except StoreUnavailable as failure:
            log.warning(
                "job %s: webhook outcome not stored (%s): it may be sent again", job.id, failure.message
            )

    def _send(self, job: Job) -> str | None:
        """None when the receiver answered 2xx; otherwise why not."""
        sent_at = datetime.now(tz=UTC)
        body = json.dumps(
            {
                "type": f"job.{job.status.lower()}",
                "timestamp": sent_at.isoformat().replace("+00:00", "Z"),
                "data": job_document(job, job.base_url),
            }
        ).encode()
        message_id = f"{job.id}.{job.status.lower()}"
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "pesto-webhooks",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": self.signer.sign(message_id, sent_at, body),
        }
        if job.correlation_id:
            headers["X-Correlation-ID"] = job.correlation_id
        request = urllib.request.Request(job.webhook, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=SEND_TIMEOUT) as answer:
                answer.read(65536)
                return None if 200 <= answer.status < 300 else f"answered {answer.status}"
        except urllib.error.HTTPError as error:
            return f"answered {error.code}"
        except (OSError, ValueError) as error:  # URLError is an OSError
            return f"{type(error).__name__}: {getattr(error, 'reason', error)}"
