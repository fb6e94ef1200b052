"""Stateful jobs: one model and interface (`model`), two backends chosen by `PESTO_JOBS_URL`.

`file:///path` (or `PESTO_JOBS_DIR`): `folder.FolderJobs`, one replica, no server. `redis://`
or `rediss://`: `redis.RedisJobs`, any number of replicas on one Redis. The Redis backend (and
the `redis` package) is imported only when the URL names it.
"""

from pesto_pack.errors import PestoError
from pesto_serve.jobs.model import (  # noqa: F401 - the package's public names
    CANCELLED,
    DONE,
    ERROR,
    FINISHED,
    PENDING,
    RUNNING,
    STATES,
    Claimed,
    Job,
    JobBackend,
    JobCancelled,
    Page,
    StoredResult,
    StoreUnavailable,
    Submission,
)


def open_backend(
    url: str,
    *,
    retention: float,
    visibility_timeout: float,
    max_attempts: int,
    folder=None,
    results_dir=None,
    inline_bytes: int = 1 << 20,
) -> JobBackend:
    """The backend `url` names (`folder` is the checked folder of a `file://` URL;
    `results_dir`: the shared volume of Redis's large results, if any)."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        try:
            from pesto_serve.jobs.redis import RedisJobs
        except ModuleNotFoundError as error:
            raise PestoError(
                f"PESTO_JOBS_URL names Redis but {error.name!r} is not installed: install "
                "pesto-toolkit[redis] (a stateful image has it)"
            ) from None

        from pesto_serve.jobs.volume import ResultVolume

        volume = ResultVolume(results_dir, inline_bytes) if results_dir else None
        return RedisJobs(
            url,
            retention=retention,
            visibility_timeout=visibility_timeout,
            max_attempts=max_attempts,
            volume=volume,
        )
    if not url.startswith("file:") or folder is None:
        raise PestoError(
            f"the job store {url!r} is not valid: use file:///a/folder (one replica) or "
            "redis://[:password@]host:6379/0 (rediss:// for TLS)"
        )
    from pesto_serve.jobs.folder import FolderJobs

    return FolderJobs(folder, retention, visibility_timeout, max_attempts)
