"""The build cache (`~/.pesto/.cache`): folders made once per key, shared by concurrent builds.

A folder is made in a staging folder beside its final place and renamed into place only when
it is complete, so nobody ever reads half of one. When two builds make the same folder at the
same time, the first rename wins and the other build uses the winner's copy.
"""

import hashlib
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


def cache_folder(workspace: Path) -> Path:
    """The cache shared by the projects of a workspace base (`~/.pesto/.cache`)."""
    return workspace.parent.parent / ".cache"


def digest(parts: Iterable[bytes | str], length: int = 32) -> str:
    """A hex key of `parts`, each length-prefixed so that ("ab", "c") and ("a", "bc") differ."""
    hashed = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        hashed.update(len(data).to_bytes(8, "big"))
        hashed.update(data)
    return hashed.hexdigest()[:length]


def cached_folder(parent: Path, key: str, make: Callable[[Path], None]) -> Path:
    """`parent/key`, made by `make(staging_folder)` unless an earlier build made it."""
    folder = parent / key
    if folder.is_dir():
        return folder
    with staging_folder(parent) as staging:
        make(staging)
        publish(staging, folder)
    return folder


@contextmanager
def staging_folder(parent: Path) -> Iterator[Path]:
    """An empty folder inside `parent`, removed afterwards unless it was published."""
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".making-", dir=parent))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish(staging: Path, folder: Path) -> None:
    """Move a finished folder into its place; a concurrent build that got there first wins."""
    try:
        staging.rename(folder)
    except OSError:
        if not folder.is_dir():
            raise
