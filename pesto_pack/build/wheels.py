"""Python packages for the image, resolved and downloaded on the host.

The image installs them with `pip install --no-index`, so a build needs no network inside
the container and no credential ever enters it: `pip` runs here with the host's own
configuration (indexes, certificates, local wheels). Results are kept in the build cache by
the hash of what was asked, so a rebuild downloads nothing.
"""

import compileall
import fnmatch
import importlib.metadata
import platform
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

import pesto_pack
from pesto_pack.build.cache import cached_folder, digest
from pesto_pack.errors import PestoError, ProjectError

DISTRIBUTION = "pesto-toolkit"
SKIPPED_IN_SOURCES = ("__pycache__", "*.pyc", "*.egg-info", ".pytest_cache")


def runtime_wheel(cache: Path) -> Path:
    """The toolkit as a wheel: built from this repository when run from it, else downloaded.

    The wheel is kept by the hash of its sources, so the image layer that installs it is
    rebuilt only when the toolkit's code changes.
    """
    root = repository_root()
    if root is None:
        version = importlib.metadata.version(DISTRIBUTION)
        return _cached_wheel(
            cache,
            f"release-{version}",
            lambda out: _pip(
                ["download", "--no-deps", "--dest", str(out), f"{DISTRIBUTION}=={version}"],
                f"download {DISTRIBUTION} {version}",
            ),
        )
    sources = _runtime_sources(root)
    key = digest(part for path in sources for part in (str(path.relative_to(root)), path.read_bytes()))
    return _cached_wheel(cache, key, lambda out: _build_from_sources(root, sources, out))


def unpacked_runtime(wheel: Path, cache: Path) -> Path:
    """The runtime wheel's files as the image's /opt/pesto/runtime, byte-compiled once.

    A pure-Python wheel installs by unpacking it; doing that here lets the image COPY it
    with no RUN step. Console scripts (`*.data/`) are left out: the image runs
    `python -m pesto_serve`.
    """
    if not wheel.name.endswith("-none-any.whl"):
        raise PestoError(f"{wheel.name} is not a pure-Python wheel; give the toolkit's own wheel")
    key = digest([wheel.read_bytes()])

    def unpack(out: Path) -> None:
        with zipfile.ZipFile(wheel) as archive:
            members = [m for m in archive.namelist() if not m.split("/", 1)[0].endswith(".data")]
            archive.extractall(out, members=members)
        compileall.compile_dir(out, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)

    return cached_folder(cache / "runtime-unpacked", key, unpack)


def repository_root() -> Path | None:
    """The checkout this toolkit runs from, or None when it is installed from a wheel."""
    root = Path(pesto_pack.__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and _pyproject(root).get("project", {}).get("name") == DISTRIBUTION:
        return root
    return None


def runtime_requirements(wheel: Path, extras: tuple[str, ...] = ()) -> list[str]:
    """The runtime's own dependencies (Requires-Dist without extras, plus those of `extras`),
    from its wheel."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(name).decode()
    requirements = []
    for line in metadata.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        requirement = line.removeprefix("Requires-Dist:").strip()
        name, _, marker = requirement.partition(";")
        extra = re.fullmatch(r"""\s*extra\s*==\s*["']([\w.-]+)["']\s*""", marker)
        if "extra" not in marker:
            requirements.append(requirement)
        elif extra and extra.group(1) in extras:
            requirements.append(name.strip())
    return requirements


def wheelhouse(
    cache: Path,
    what: str,
    requirements: list[str] = (),
    requirements_file: Path | None = None,
    local_wheels: dict[Path, str] | None = None,
) -> Path | None:
    """A folder of wheels that satisfies all that is asked, or None when nothing is.

    `local_wheels` maps wheel files to their sha256 (they join the resolution, so their own
    dependencies are fetched too). `pip wheel` rather than `pip download`: a package
    published only as source is built into a wheel here, so the image never needs a
    compiler or build tools.
    """
    local_wheels = local_wheels or {}
    file_text = requirements_file.read_text() if requirements_file else ""
    if not requirements and not local_wheels and not _has_requirement(file_text):
        return None
    python = f"{sys.implementation.cache_tag}-{sys.platform}-{platform.machine()}"
    key = digest([python, "\n".join(requirements), file_text, *sorted(local_wheels.values())])
    arguments = [*requirements, *map(str, local_wheels)]
    if requirements_file:
        arguments += ["--requirement", str(requirements_file)]
    cwd = requirements_file.parent if requirements_file else None
    return cached_folder(
        cache / "wheels",
        key,
        lambda out: _pip(["wheel", "--wheel-dir", str(out), *arguments], what, cwd=cwd, error=ProjectError),
    )


def _has_requirement(text: str) -> bool:
    return any(line.split("#")[0].strip() for line in text.splitlines())


def _cached_wheel(cache: Path, key: str, make) -> Path:
    folder = cached_folder(cache / "runtime", key, make)
    wheels = sorted(folder.glob("*.whl"))
    if len(wheels) != 1:
        raise PestoError(f"{folder} should hold exactly one wheel of the toolkit; delete it and build again")
    return wheels[0]


def _runtime_sources(root: Path) -> list[Path]:
    """The files that go into the runtime wheel: pyproject.toml, the readme, the packages."""
    pyproject = _pyproject(root)
    patterns = (
        pyproject.get("tool", {})
        .get("setuptools", {})
        .get("packages", {})
        .get("find", {})
        .get("include", ["*"])
    )
    files = [root / "pyproject.toml"]
    readme = pyproject.get("project", {}).get("readme")
    if isinstance(readme, str) and (root / readme).is_file():
        files.append(root / readme)
    for package in sorted(root.iterdir()):
        if (package / "__init__.py").is_file() and any(fnmatch.fnmatch(package.name, p) for p in patterns):
            files += sorted(
                path for path in package.rglob("*") if path.is_file() and not _skipped(path.relative_to(root))
            )
    return files


def _skipped(relative: Path) -> bool:
    return any(fnmatch.fnmatch(part, pattern) for part in relative.parts for pattern in SKIPPED_IN_SOURCES)


def _build_from_sources(root: Path, sources: list[Path], out: Path) -> None:
    """Build from a copy of the sources, so the build leaves nothing in the checkout."""
    with tempfile.TemporaryDirectory(prefix="pesto-runtime-") as copy:
        for path in sources:
            target = Path(copy) / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        _pip(["wheel", "--no-deps", "--wheel-dir", str(out), copy], "build the runtime wheel")


def _pip(arguments: list[str], what: str, cwd: Path | None = None, error=PestoError) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        *arguments,
        "--no-input",
        "--progress-bar",
        "off",
        "--disable-pip-version-check",
    ]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise error(f"pip could not {what} (with this machine's pip configuration):\n{tail}")


def _pyproject(root: Path) -> dict:
    with (root / "pyproject.toml").open("rb") as stream:
        return tomllib.load(stream)
