"""Large results of the Redis backend on a shared volume instead of in Redis's memory.

With `PESTO_JOBS_RESULTS_DIR` (a folder every replica mounts, read-write: an NFS or other
ReadWriteMany volume), a result document over `PESTO_JOBS_INLINE_BYTES` is written there, and
the job record in Redis names the file. Each run writes its own files (`<job id>/<run>-<n>`):
a late duplicate run never overwrites the stored result's files, and removes its own when it
finds the job already finished.
"""

import shutil
import time
from pathlib import Path

from pesto_serve.jobs.folder import _write_atomically

PREFIX = "volume:"


class ResultVolume:
    def __init__(self, folder: Path, inline_bytes: int):
        self.folder = Path(folder)
        self.inline_bytes = inline_bytes

    def keeps(self, content: bytes) -> bool:
        """Whether a document this size goes to the volume rather than into Redis."""
        return len(content) > self.inline_bytes

    def write(self, job_id: str, run: str, number: int, content: bytes) -> str:
        """Write a document (fsync'ed, renamed into place); the name the record keeps."""
        folder = self.folder / job_id
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomically(folder / f"{run}-{number}", content)
        return f"{PREFIX}{job_id}/{run}-{number}"

    def read(self, name: str) -> bytes | None:
        try:
            return (self.folder / name.removeprefix(PREFIX)).read_bytes()
        except FileNotFoundError:
            return None

    def remove(self, names: list[str]) -> None:
        for name in names:
            if name.startswith(PREFIX):
                (self.folder / name.removeprefix(PREFIX)).unlink(missing_ok=True)

    def remove_job(self, job_id: str) -> None:
        shutil.rmtree(self.folder / job_id, ignore_errors=True)

    def remove_older_than(self, seconds: float) -> int:
        """Remove the folders of jobs Redis forgot by itself (TTL): none is younger than
        `seconds` since its last write. How many."""
        cutoff = time.time() - seconds
        old = [f for f in self.folder.iterdir() if f.is_dir() and f.stat().st_mtime < cutoff]
        for folder in old:
            shutil.rmtree(folder, ignore_errors=True)
        return len(old)
