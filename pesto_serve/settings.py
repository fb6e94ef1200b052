"""The runtime's settings: the `PESTO_*` environment variables, read and checked once at start."""

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pesto_pack.errors import PestoError
from pesto_pack.types.base import DecodeSettings

MIB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """How one service runs; `from_env()` in an image, the CLI's options on the host."""

    project_dir: Path = Path("/opt/pesto/project")
    config_dir: Path = Path("/etc/pesto")
    host: str = "0.0.0.0"
    port: int = 8080
    slots: int = 1
    """How many requests are processed at once (`process()` itself is still never concurrent
    unless the project's `Process` says `thread_safe = True`)."""
    queue_size: int = 32
    """How many more requests may wait for a slot; past that the service answers 503."""
    max_body_bytes: int = 200 * MIB
    memory_body_bytes: int = 4 * MIB
    """Request bodies and answers up to this size stay in memory; larger ones are spooled to a
    temporary file by waitress (a 1024² image is 2.8 MB: no file, no copy through it)."""
    header_timeout: float = 10.0
    """Seconds a client has to send its request's line and headers; then it is disconnected."""
    idle_timeout: float = 60.0
    """Seconds an idle keep-alive connection is kept open."""
    max_connections: int = 1000
    """Open connections at most; past it, new ones wait in the listen backlog."""
    uri_allowlist: tuple[str, ...] = ()
    max_image_pixels: int = DecodeSettings.max_image_pixels
    jobs_dir: Path | None = None
    """Where stateful jobs live; None: a temporary folder (jobs do not survive a restart)."""
    jobs_url: str | None = None
    """`file:///folder` (the same as jobs_dir) or `redis://[:password@]host:port/db`
    (`rediss://` for TLS): the job store that replicas share. See docs/jobs.md."""
    jobs_retention: float = 86400.0
    """Seconds a finished job and its results are kept."""
    jobs_visibility_timeout: float = 30.0
    """Seconds without a heartbeat after which a running job's replica counts as dead and
    another one runs the job again."""
    jobs_max_attempts: int = 3
    """Runs of one job (a first run and reruns after its replica died) before it ends ERROR."""
    jobs_results_dir: Path | None = None
    """With Redis: a folder every replica mounts, where results over jobs_inline_bytes go
    instead of Redis's memory. None: every result in Redis."""
    jobs_inline_bytes: int = MIB
    webhook_allowlist: tuple[str, ...] = ()
    """URL prefixes a job's webhook may call; empty: webhooks are refused."""
    webhook_secret: str | None = None
    """The Standard Webhooks signing secret (`whsec_` + base64)."""
    webhook_max_attempts: int = 8
    webhook_backoff: float = 2.0
    """Seconds before the first retry of a failed delivery; doubled at each retry (10 min cap)."""
    process_timeout: float = 0.0
    """Seconds a request waits for its answer once admitted (queue and processing); 0: no limit."""
    log_format: str = "text"
    grace_period: float = 10.0
    """Seconds that running requests get to finish after SIGTERM."""
    drain_delay: float = 0.0
    """Seconds after SIGTERM during which ready answers 503 while requests are still accepted
    and answered, before the service refuses connections and drains: a balancer that finds
    replicas by health checks (HAProxy) takes it out of its pool first. Set it above the
    checks' interval x fall; 0 in Kubernetes, where the preStop pause does this."""
    page: bool = True
    """Whether `GET /` answers the try-it page (PESTO_PAGE=0 turns it off)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """The settings that `PESTO_*` variables give; a bad value names the variable."""
        env = _Env(os.environ if environ is None else environ)
        defaults = cls()
        return cls(
            project_dir=env.path("PESTO_PROJECT_DIR", defaults.project_dir),
            config_dir=env.path("PESTO_CONFIG_DIR", defaults.config_dir),
            host=env.text("PESTO_HOST", defaults.host),
            port=env.integer("PESTO_PORT", defaults.port, minimum=0, maximum=65535),
            slots=env.integer("PESTO_SLOTS", defaults.slots, minimum=1),
            queue_size=env.integer("PESTO_QUEUE_SIZE", defaults.queue_size, minimum=0),
            max_body_bytes=env.integer("PESTO_MAX_BODY_BYTES", defaults.max_body_bytes, minimum=1),
            memory_body_bytes=env.integer("PESTO_MEMORY_BODY_BYTES", defaults.memory_body_bytes, minimum=0),
            header_timeout=env.seconds("PESTO_HEADER_TIMEOUT", defaults.header_timeout),
            idle_timeout=env.seconds("PESTO_IDLE_TIMEOUT", defaults.idle_timeout),
            max_connections=env.integer("PESTO_MAX_CONNECTIONS", defaults.max_connections, minimum=1),
            uri_allowlist=env.prefixes("PESTO_URI_ALLOWLIST"),
            max_image_pixels=env.integer("PESTO_MAX_IMAGE_PIXELS", defaults.max_image_pixels, minimum=1),
            jobs_dir=env.path("PESTO_JOBS_DIR", None),
            jobs_url=env.jobs_url("PESTO_JOBS_URL"),
            jobs_retention=env.seconds("PESTO_JOBS_RETENTION", defaults.jobs_retention),
            jobs_visibility_timeout=env.seconds(
                "PESTO_JOBS_VISIBILITY_TIMEOUT", defaults.jobs_visibility_timeout
            ),
            jobs_max_attempts=env.integer("PESTO_JOBS_MAX_ATTEMPTS", defaults.jobs_max_attempts, minimum=1),
            jobs_results_dir=env.path("PESTO_JOBS_RESULTS_DIR", None),
            jobs_inline_bytes=env.integer("PESTO_JOBS_INLINE_BYTES", defaults.jobs_inline_bytes, minimum=0),
            webhook_allowlist=env.prefixes("PESTO_WEBHOOK_ALLOWLIST"),
            webhook_secret=env.text("PESTO_WEBHOOK_SECRET", "") or None,
            webhook_max_attempts=env.integer(
                "PESTO_WEBHOOK_MAX_ATTEMPTS", defaults.webhook_max_attempts, minimum=1
            ),
            webhook_backoff=env.seconds("PESTO_WEBHOOK_BACKOFF", defaults.webhook_backoff),
            process_timeout=env.seconds("PESTO_PROCESS_TIMEOUT", defaults.process_timeout),
            log_format=env.choice("PESTO_LOG_FORMAT", defaults.log_format, ("text", "json")),
            grace_period=env.seconds("PESTO_GRACE_PERIOD", defaults.grace_period),
            drain_delay=env.seconds("PESTO_DRAIN_DELAY", defaults.drain_delay),
            page=env.choice("PESTO_PAGE", "1", _SWITCH) in _SWITCH[:4],
        )

    @property
    def decode_settings(self) -> DecodeSettings:
        return DecodeSettings(uri_allowlist=self.uri_allowlist, max_image_pixels=self.max_image_pixels)

    @property
    def jobs_store_url(self) -> str:
        """The job store's URL: PESTO_JOBS_URL, else the folder of PESTO_JOBS_DIR (or a
        temporary one) as a `file://` URL."""
        if self.jobs_url and not self.jobs_url.startswith("file:"):
            return self.jobs_url
        return "file://" + str(self.jobs_dir or "")

    def jobs_folder(self) -> Path:
        """The jobs folder, made if needed and checked writable (a fresh temporary one when none
        is configured): a volume mounted read-only or owned by another user fails at start, not
        at the first job."""
        folder = (
            self.jobs_dir or _file_url_path(self.jobs_url) or Path(tempfile.mkdtemp(prefix="pesto-jobs-"))
        )
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=folder).close()
        except OSError as error:
            raise PestoError(
                f"cannot create the jobs folder {folder} ({error}); set PESTO_JOBS_DIR to a writable folder"
            ) from None
        return folder


_SWITCH = ("1", "true", "yes", "on", "0", "false", "no", "off")
"""The values of an on/off setting: the first four turn it on."""


def _file_url_path(url: str | None) -> Path | None:
    return Path(url.removeprefix("file://")) if url and url.startswith("file://") else None


JOBS_URL_SCHEMES = ("file://", "redis://", "rediss://", "unix://")


class _Env:
    """Typed reads of environment variables; an empty value counts as unset."""

    def __init__(self, environ: Mapping[str, str]):
        self.environ = environ

    def _raw(self, name: str) -> str | None:
        value = self.environ.get(name, "").strip()
        return value or None

    def text(self, name: str, default: str) -> str:
        return self._raw(name) or default

    def path(self, name: str, default: Path | None) -> Path | None:
        raw = self._raw(name)
        return Path(raw).expanduser() if raw else default

    def integer(self, name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = int(raw.replace("_", ""))
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            bounds = f"at least {minimum}" + (f" and at most {maximum}" if maximum is not None else "")
            raise PestoError(f"{name}={raw!r} is not valid: set it to a whole number {bounds}")
        return value

    def seconds(self, name: str, default: float) -> float:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not value >= 0:
            raise PestoError(f"{name}={raw!r} is not valid: set it to a number of seconds (0 or more)")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        raw = (self._raw(name) or default).lower()
        if raw not in choices:
            raise PestoError(f"{name}={raw!r} is not valid: set it to one of {', '.join(choices)}")
        return raw

    def jobs_url(self, name: str) -> str | None:
        raw = self._raw(name)
        if raw is None:
            return None
        if not raw.startswith(JOBS_URL_SCHEMES) or raw in JOBS_URL_SCHEMES:
            raise PestoError(
                f"{name}={raw!r} is not valid: set it to file:///a/folder (one replica) or "
                "redis://[:password@]host:6379/0 (rediss:// for TLS), or leave it unset"
            )
        return raw

    def prefixes(self, name: str) -> tuple[str, ...]:
        raw = self._raw(name) or ""
        return tuple(prefix.strip() for prefix in raw.split(",") if prefix.strip())
