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
    uri_allowlist: tuple[str, ...] = ()
    max_image_pixels: int = DecodeSettings.max_image_pixels
    jobs_dir: Path | None = None
    """Where stateful jobs live; None: a temporary folder (jobs do not survive a restart)."""
    process_timeout: float = 0.0
    """Seconds a request waits for its answer once admitted (queue and processing); 0: no limit."""
    log_format: str = "text"
    grace_period: float = 10.0
    """Seconds that running requests get to finish after SIGTERM."""
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
            uri_allowlist=env.prefixes("PESTO_URI_ALLOWLIST"),
            max_image_pixels=env.integer(
                "PESTO_MAX_IMAGE_PIXELS", defaults.max_image_pixels, minimum=1
            ),
            jobs_dir=env.path("PESTO_JOBS_DIR", None),
            process_timeout=env.seconds("PESTO_PROCESS_TIMEOUT", defaults.process_timeout),
            log_format=env.choice("PESTO_LOG_FORMAT", defaults.log_format, ("text", "json")),
            grace_period=env.seconds("PESTO_GRACE_PERIOD", defaults.grace_period),
            page=env.choice("PESTO_PAGE", "1", _SWITCH) in _SWITCH[:4],
        )

    @property
    def decode_settings(self) -> DecodeSettings:
        return DecodeSettings(uri_allowlist=self.uri_allowlist, max_image_pixels=self.max_image_pixels)

    def jobs_folder(self) -> Path:
        """The jobs folder, made if needed and checked writable (a fresh temporary one when none
        is configured): a volume mounted read-only or owned by another user fails at start, not
        at the first job."""
        folder = self.jobs_dir or Path(tempfile.mkdtemp(prefix="pesto-jobs-"))
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=folder).close()
        except OSError as error:
            raise PestoError(
                f"cannot create the jobs folder {folder} ({error}); set PESTO_JOBS_DIR to a "
                "writable folder"
            ) from None
        return folder


_SWITCH = ("1", "true", "yes", "on", "0", "false", "no", "off")
"""The values of an on/off setting: the first four turn it on."""


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

    def prefixes(self, name: str) -> tuple[str, ...]:
        raw = self._raw(name) or ""
        return tuple(prefix.strip() for prefix in raw.split(",") if prefix.strip())
