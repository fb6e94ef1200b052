"""The `requirements` of `pesto/build/requirements.json`: fetched on the host and checked.

A resource is read from a path relative to the project, a `file://` URI or an `http(s)://`
URL, and its sha256 is checked when the project gives one. Archives (`.tar.gz`, `.tgz`,
`.tar`) are unpacked here, on the host, into the build workspace, and the build COPYs the
unpacked tree to `to`: Python's tarfile can be told exactly what to refuse, whereas a
`tar` in the base image (if there is one) cannot be trusted to, and the image then holds
the files only, not the archive as well. Members that would land outside the target are
refused before anything is written: absolute paths, `..`, links pointing out of the
target, device files and FIFOs.
"""

import hashlib
import posixpath
import shutil
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from pesto_pack.build.cache import cached_folder, publish, staging_folder
from pesto_pack.errors import ProjectError
from pesto_pack.profiles import Resource

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
WHEEL_SUFFIX = ".whl"
CHUNK = 1 << 20


@dataclass(frozen=True)
class FetchedResource:
    """A resource as a local file whose content has been hashed (and checked if asked)."""

    resource: Resource
    path: Path
    sha256: str

    @property
    def is_wheel(self) -> bool:
        return self.path.name.endswith(WHEEL_SUFFIX)

    @property
    def is_archive(self) -> bool:
        return self.path.name.endswith(ARCHIVE_SUFFIXES)


def fetch(resource: Resource, project_root: Path, cache: Path) -> FetchedResource:
    """The resource's file on this machine, downloaded into `cache` when it is a URL."""
    _check_target(resource)
    parsed = urlparse(resource.source)
    if parsed.scheme in ("http", "https"):
        return _download(resource, cache)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ProjectError(
                f"resource {resource.name!r}: {resource.source!r} is not an absolute file URI; "
                "write file:///absolute/path or a path relative to the project folder"
            )
        path = Path(unquote(parsed.path))
    elif parsed.scheme and len(parsed.scheme) > 1:
        raise ProjectError(
            f"resource {resource.name!r}: {parsed.scheme}:// sources are not supported; copy "
            "the file next to the project or serve it over http(s)"
        )
    else:
        path = project_root / resource.source
    if not path.is_file():
        raise ProjectError(f"resource {resource.name!r}: {path} does not exist or is not a file")
    return _checked(resource, path, file_sha256(path))


def unpacked(fetched: FetchedResource, cache: Path) -> Path:
    """The folder that the build COPYs to the resource's `to`, made once per content."""

    def unpack(staging: Path) -> None:
        if fetched.is_archive:
            safe_extract(fetched.path, staging, fetched.resource.name)
        else:
            shutil.copyfile(fetched.path, staging / fetched.path.name)

    return cached_folder(cache / "resources", fetched.sha256, unpack)


def safe_extract(archive: Path, target: Path, name: str) -> None:
    """Unpack `archive` into `target`, refusing any member that could land outside it."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                problem = unsafe_member(member)
                if problem:
                    raise ProjectError(
                        f"resource {name!r}: {archive.name} holds {member.name!r}, {problem}; "
                        "refusing to unpack it (repack the archive with relative paths only)"
                    )
            # The data filter checks again, against the real file system as it is written.
            tar.extractall(target, members=members, filter="data")
    except (tarfile.TarError, OSError) as error:
        raise ProjectError(f"resource {name!r}: {archive.name} cannot be unpacked: {error}") from None


def unsafe_member(member: tarfile.TarInfo) -> str | None:
    """Why this archive member must not be unpacked, or None when it is safe."""
    path = PurePosixPath(member.name)
    if member.name.startswith("/") or path.is_absolute():
        return "an absolute path"
    if ".." in path.parts:
        return "a path through '..'"
    if member.isdev():
        return "a device file or FIFO"
    if member.issym() or member.islnk():
        if member.linkname.startswith("/"):
            return f"a link to the absolute path {member.linkname!r}"
        start = posixpath.dirname(member.name) if member.issym() else ""
        resolved = posixpath.normpath(posixpath.join(start, member.linkname))
        if resolved == ".." or resolved.startswith("../"):
            return f"a link to {member.linkname!r}, outside the target folder"
    return None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_target(resource: Resource) -> None:
    if resource.source.endswith(WHEEL_SUFFIX):
        return
    if not resource.target or not resource.target.startswith("/"):
        raise ProjectError(
            f"resource {resource.name!r} needs `to`, the absolute folder in the image where it "
            f"goes (got {resource.target!r})"
        )


def _download(resource: Resource, cache: Path) -> FetchedResource:
    """Downloads are kept by content when the project pins a sha256, so a rebuild reuses them."""
    basename = PurePosixPath(unquote(urlparse(resource.source).path)).name or resource.name
    if resource.sha256:
        kept = cache / "downloads" / resource.sha256.lower() / basename
        if kept.is_file():
            return _checked(resource, kept, file_sha256(kept))
    with staging_folder(cache / "downloads") as staging:
        partial = staging / basename
        digest = hashlib.sha256()
        try:
            with urllib.request.urlopen(resource.source, timeout=60) as answer, partial.open("wb") as out:
                while chunk := answer.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        except OSError as error:
            raise ProjectError(
                f"resource {resource.name!r}: cannot download {resource.source}: {error}"
            ) from None
        fetched = _checked(resource, partial, digest.hexdigest())
        kept_folder = cache / "downloads" / fetched.sha256
        publish(staging, kept_folder)
        return FetchedResource(resource, kept_folder / basename, fetched.sha256)


def _checked(resource: Resource, path: Path, actual: str) -> FetchedResource:
    expected = (resource.sha256 or "").lower()
    if expected and expected != actual:
        raise ProjectError(
            f"resource {resource.name!r}: sha256 mismatch for {resource.source}: "
            f"requirements.json says {expected}, the file has {actual}; refusing to use it "
            "(fix the sha256 or the file)"
        )
    return FetchedResource(resource, path, actual)
