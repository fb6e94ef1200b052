"""The two Dockerfiles of a service, rendered from a few lists the way repo2docker does.

A service is built as two images so that a change to the project's code rebuilds in seconds:

- the dependencies image (`NAME-deps:HASH`): the base image, a virtualenv holding the
  runtime's dependencies then the project's (installed in a first stage from wheels that
  were downloaded on the host, so the wheels themselves stay out of the image), the
  resources, the non-root user and the settings every service shares (port, health check,
  command). It is built only when its Dockerfile or inputs change, and its tag is the hash
  of those, so an unchanged one is found by name: its build context, which holds every
  wheel, is then not even sent to the engine.
- the service image (`NAME:VERSION`): FROM the dependencies image, the runtime (this
  toolkit's wheel, unpacked: it is pure Python, and a COPY needs no RUN, so no root step),
  the project's environment and labels, and last the api files and the project's code,
  which change most often. Its context is small and every step is cheap.

Both files are written into the build workspace, with a `build.sh` that rebuilds by hand.
"""

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pesto_pack.errors import ProjectError

VENV = "/opt/pesto/venv"
PROJECT_DIR = "/opt/pesto/project"
CONFIG_DIR = "/etc/pesto"
PORT = 8080
USER = "pesto"
UID = 10001
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BASE_PATH = "${PATH:-" + SYSTEM_PATH + "}"
"""The base image's PATH (conda and CUDA images set their own), else Debian's: some bases,
such as one imported from a root file system, set none."""
RUNTIME_DIR = "/opt/pesto/runtime"
RUNTIME_FOLDER = "runtime"
PIP_INSTALL = "pip install --no-index --no-cache-dir --disable-pip-version-check"
SERVICE_ENVIRONMENT = {
    "PESTO_PROJECT_DIR": PROJECT_DIR,
    "PESTO_CONFIG_DIR": CONFIG_DIR,
    "PESTO_HOST": "0.0.0.0",
    "PESTO_PORT": str(PORT),
    "PYTHONUNBUFFERED": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    # One malloc arena per waitress thread grows memory by a request's size per thread with
    # large images (pesto_serve/memory.py); glibc reads this before any code runs.
    "MALLOC_ARENA_MAX": "1",
}
READY_PROBE = (
    "import os, urllib.request; urllib.request.urlopen("
    "'http://127.0.0.1:%s/api/v1/ready' % os.environ.get('PESTO_PORT', '8080'), timeout=4)"
)
RUNTIME_ON_PATH = (
    "import pathlib, sysconfig; "
    "pathlib.Path(sysconfig.get_path('purelib'), 'pesto-runtime.pth').write_text("
    f"'import sys; sys.path.insert(0, \"{RUNTIME_DIR}\")\\n')"
)
"""Puts the runtime first on the virtualenv's path, ahead of a pesto-toolkit that a project
might list in its requirements.txt for its own tests."""
TRIM_VENV = """
import pathlib, shutil, sys, sysconfig
venv, site = pathlib.Path(sys.prefix), pathlib.Path(sysconfig.get_path("purelib"))
size = lambda: sum(p.stat().st_size for p in venv.rglob("*") if p.is_file() and not p.is_symlink())
before = size()
for folder in sorted(site.glob("*/**/test*"), reverse=True):
    if folder.is_dir() and folder.name in ("test", "tests"):
        shutil.rmtree(folder)
for path in list(site.rglob("*")):
    build_only = path.suffix in (".h", ".hpp", ".hxx", ".cuh", ".inl", ".a")
    test_program = path.parent.name == "bin" and "test" in path.name.lower()
    if (build_only or test_program) and path.is_file():
        path.unlink()
for path in [*site.glob("pip"), *site.glob("pip-*.dist-info"), *venv.glob("bin/pip*"), venv / "include"]:
    shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
print(f"trimmed the virtualenv from {before / 1e6:.0f} MB to {size() / 1e6:.0f} MB")
""".strip()
"""What the service never uses, removed from the virtualenv before it is copied into the image:
packages' test suites (folders `test`, `tests` inside a package) and test programs, C and C++
headers and static libraries (only a compiler reads them), and pip (a service installs
nothing; the base image keeps its own). Byte code stays: without it every start would compile
the sources again. The example image: 1.22 GB to less (BENCHMARKS.md lists its largest paths)."""
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class DependenciesRecipe:
    """What the dependencies image holds, in layer order."""

    base_image: str
    wheel_folders: Sequence[str]
    """Context folders of wheels, installed into the virtualenv in this order."""
    resources: Sequence[tuple[str, str]] = ()
    """(context folder, folder in the image) pairs, copied in this order."""
    volumes: Sequence[str] = ()
    """Folders the service writes to: created, given to the service's user, and VOLUMEs."""


@dataclass(frozen=True)
class ServiceRecipe:
    """What the service image adds to its dependencies image."""

    dependencies_image: str
    environment: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


def dependencies_dockerfile(recipe: DependenciesRecipe) -> str:
    # Volumes are made after the virtualenv and resources are copied, so that profiles that
    # only add a volume (stateful) share those large layers with the default image.
    make_folders = " \\\n && ".join(f"mkdir -p {v} && chown {USER}:{USER} {v}" for v in recipe.volumes)
    lines = [
        "# Generated by pesto-pack: the dependencies image (base, virtualenv, resources, user).",
        "# Wheels are installed in the first stage; only the virtualenv reaches the image.",
        f"FROM {recipe.base_image} AS venv",
        f"ENV PATH={BASE_PATH}",
        f"RUN python3 -m venv {VENV}",
        f"RUN {json.dumps([f'{VENV}/bin/python', '-c', RUNTIME_ON_PATH])}",
    ]
    for folder in recipe.wheel_folders:
        inside = f"/tmp/{folder}"
        lines += [
            f"COPY {folder}/ {inside}/",
            f"RUN {VENV}/bin/{PIP_INSTALL} --find-links {inside} {inside}/*.whl",
        ]
    lines += [
        f"RUN {json.dumps([f'{VENV}/bin/python', '-c', TRIM_VENV])}",
        "",
        f"FROM {recipe.base_image}",
        _multiline(
            "ENV",
            [f"PATH={VENV}/bin:{BASE_PATH}"] + [f"{k}={_quoted(v)}" for k, v in SERVICE_ENVIRONMENT.items()],
        ),
        f"RUN groupadd --system --gid {UID} {USER} && useradd --system --uid {UID} --gid {USER} "
        f"--create-home --home-dir /home/{USER} --shell /usr/sbin/nologin {USER}",
        f"COPY --from=venv {VENV} {VENV}",
        *(f"COPY {folder}/ {target}" for folder, target in recipe.resources),
        *([f"RUN {make_folders}"] if recipe.volumes else []),
        f"EXPOSE {PORT}",
        *([f"VOLUME {json.dumps(list(recipe.volumes))}"] if recipe.volumes else []),
        "HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 "
        f"CMD {json.dumps(['python', '-c', READY_PROBE])}",
        f"WORKDIR {PROJECT_DIR}",
        f"USER {USER}",
        'CMD ["python", "-m", "pesto_serve"]',
    ]
    return "\n".join(lines) + "\n"


def service_dockerfile(recipe: ServiceRecipe) -> str:
    lines = [
        "# Generated by pesto-pack: the service image. The project's code comes last, so that",
        "# changing it rebuilds only the last layer.",
        f"FROM {recipe.dependencies_image}",
        f"COPY {RUNTIME_FOLDER}/ {RUNTIME_DIR}/",
        _multiline(
            "ENV", [f"{_env_name(k)}={_quoted(v, expand=True)}" for k, v in recipe.environment.items()]
        ),
        _multiline("LABEL", [f"{_quoted(k)}={_quoted(v)}" for k, v in recipe.labels.items()]),
        f"COPY etc/pesto/ {CONFIG_DIR}/",
        f"COPY project/ {PROJECT_DIR}/",
    ]
    return "\n".join(line for line in lines if line) + "\n"


def _multiline(instruction: str, items: list[str]) -> str:
    if not items:
        return ""
    return f"{instruction} " + " \\\n    ".join(items)


def _env_name(name: str) -> str:
    if not ENV_NAME.match(name):
        raise ProjectError(
            f"pesto/build/requirements.json: environment variable name {name!r} is not valid; "
            "use letters, digits and underscores, not starting with a digit"
        )
    return name


def _quoted(value: str, expand: bool = False) -> str:
    """A Dockerfile double-quoted word; `$VAR` is expanded only where users expect it (ENV)."""
    if any(ord(c) < 32 for c in value):
        raise ProjectError(
            f"{value!r}: control characters (new lines, tabs) cannot go in an image's settings"
        )
    quoted = json.dumps(value, ensure_ascii=False)
    return quoted if expand else quoted.replace("$", "\\$")
