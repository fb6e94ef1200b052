"""Stateful jobs, kept in a folder so that a restarted service still answers for them.

Layout: `<folder>/<job id>/job.json` (state, error, result index) and
`<folder>/<job id>/results/<n>` (one file per result document). Every file is written to a
temporary name and renamed into place, so a crash never leaves a half-written one; a job's
results are written before the `job.json` that says DONE. Job ids come from
`secrets.token_urlsafe`: a caller cannot guess another caller's job.
"""

import itertools
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from pesto_pack.types.base import Result

log = logging.getLogger(__name__)

PENDING, RUNNING, DONE, ERROR = "PENDING", "RUNNING", "DONE", "ERROR"
STATES = (PENDING, RUNNING, DONE, ERROR)
INTERRUPTED = "interrupted by a service restart; submit the job again"
_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@dataclass(frozen=True)
class StoredResult:
    """Where one result document is, and its media type."""

    file: str
    media_type: str


@dataclass(frozen=True)
class Job:
    id: str
    status: str
    error: str | None = None
    created: float = 0.0
    updated: float = 0.0
    results: dict[str, StoredResult | list[StoredResult]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict) -> "Job":
        def stored(value):
            if isinstance(value, list):
                return [StoredResult(**item) for item in value]
            return StoredResult(**value)

        results = {key: stored(value) for key, value in (data.get("results") or {}).items()}
        return cls(
            id=data["id"],
            status=data["status"],
            error=data.get("error"),
            created=data.get("created", 0.0),
            updated=data.get("updated", 0.0),
            results=results,
        )


class JobStore:
    """The jobs of one service: on disk for durability, indexed in memory for fast reads."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def recover(self) -> int:
        """Index the jobs on disk; those a previous run left unfinished become ERROR.

        Returns how many were interrupted.
        """
        interrupted = 0
        for job_file in sorted(self.folder.glob("*/job.json")):
            try:
                job = Job.from_json(json.loads(job_file.read_text()))
            except (OSError, ValueError, KeyError, TypeError) as error:
                log.warning("ignoring unreadable job %s: %s", job_file, error)
                continue
            if job.status in (PENDING, RUNNING):
                job = self._write(replace(job, status=ERROR, error=INTERRUPTED, updated=time.time()))
                interrupted += 1
            self._jobs[job.id] = job
        return interrupted

    def create(self) -> Job:
        now = time.time()
        return self._write(Job(id=secrets.token_urlsafe(16), status=PENDING, created=now, updated=now))

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id) if _ID.match(job_id) else None

    def all(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda job: job.created)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for job in list(self._jobs.values()):
            counts[job.status] += 1
        return counts

    def running(self, job_id: str) -> Job:
        return self._update(job_id, status=RUNNING)

    def failed(self, job_id: str, message: str) -> Job:
        return self._update(job_id, status=ERROR, error=message)

    def done(self, job_id: str, documents: dict[str, Result | list[Result]]) -> Job:
        """Write the result documents, then mark the job DONE."""
        folder = self.folder / job_id / "results"
        folder.mkdir(parents=True, exist_ok=True)
        numbers = itertools.count()

        def store(document: Result) -> StoredResult:
            name = str(next(numbers))
            _write_atomically(folder / name, document.content)
            return StoredResult(f"results/{name}", document.media_type)

        results = {
            key: [store(d) for d in value] if isinstance(value, list) else store(value)
            for key, value in documents.items()
        }
        return self._update(job_id, status=DONE, results=results)

    def read(self, job: Job, stored: StoredResult) -> Result:
        return Result((self.folder / job.id / stored.file).read_bytes(), stored.media_type)

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)
        shutil.rmtree(self.folder / job_id, ignore_errors=True)

    def delete_result(self, job: Job, key: str) -> Job:
        stored = job.results[key]
        for item in stored if isinstance(stored, list) else [stored]:
            (self.folder / job.id / item.file).unlink(missing_ok=True)
        results = {k: v for k, v in job.results.items() if k != key}
        return self._update(job.id, results=results)

    def _update(self, job_id: str, **changes) -> Job:
        with self._lock:
            job = self._jobs[job_id]
        return self._write(replace(job, updated=time.time(), **changes))

    def _write(self, job: Job) -> Job:
        folder = self.folder / job.id
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomically(folder / "job.json", json.dumps(asdict(job), indent=1).encode())
        with self._lock:
            self._jobs[job.id] = job
        return job


def _write_atomically(path: Path, content: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
