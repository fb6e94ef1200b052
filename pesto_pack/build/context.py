"""The build contexts of a service, assembled in its workspace from the project and the cache.

Everything that can fail because of the project (a resource that is missing or does not
match its sha256, an unsafe archive, a requirement pip cannot find) fails here, before the
engine is called. The workspace keeps the result for a person to read and rebuild by hand:

    ~/.pesto/NAME/VERSION/<profiles or "default">/
        build.sh            the two `docker build` commands
        build.log           the engine's log of the last build
        dependencies/       Dockerfile, wheels/..., resources/...
        service/            Dockerfile, runtime/ (the toolkit), etc/pesto/, project/algorithm/
    ~/.pesto/.cache/        wheels, the runtime wheel, downloads and unpacked resources,
                            kept by hash and shared by every project of this workspace

Files come from the cache as hard links, so assembling costs little on every build.
"""

import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from pesto_pack.build import dockerfile, resources, wheels
from pesto_pack.build.cache import cache_folder, digest
from pesto_pack.build.labels import image_labels
from pesto_pack.errors import ProjectError
from pesto_pack.project import PACKAGE, Project

IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
READABLE = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
SEARCHABLE = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
PLAN_VERSION = "3"
"""Part of the dependencies image's hash: bump it when the layout of that image changes."""


@dataclass(frozen=True)
class Contexts:
    folder: Path
    dependencies: Path
    service: Path
    dependencies_tag: str

    @property
    def log_file(self) -> Path:
        return self.folder / "build.log"


@dataclass(frozen=True)
class Inputs:
    """What a build fetched and resolved on the host, keyed by where it goes in a context."""

    wheel_folders: dict[str, Path]
    """`wheels/runtime-deps` and `wheels/project-deps` (when the project has any) to cache folders."""
    wheel_files: tuple[str, ...]
    """`wheels/.../NAME.whl` of every wheel: part of the dependencies image's hash."""
    resources: dict[str, tuple[Path, str, str]]
    """`resources/INDEX-NAME` to (unpacked cache folder, folder in the image, sha256)."""
    runtime: Path
    """The toolkit's wheel unpacked, which the service image COPYs as its runtime."""


@dataclass(frozen=True)
class Plan:
    """Both contexts as data: their Dockerfiles, and which cache folder goes where in each."""

    dependencies_tag: str
    dependencies_dockerfile: str
    service_dockerfile: str
    dependencies_links: dict[str, Path]
    service_links: dict[str, Path]


def prepare(
    project: Project,
    tag: str,
    base_image: str,
    workspace: Path,
    runtime_wheel: Path | None = None,
) -> Contexts:
    """Fetch, check and assemble everything both builds need; the engine is not involved.

    The project's own inputs come first, so that a mistake in them is reported at once.
    """
    _check_package(project)
    inputs = gather(project, cache_folder(workspace), runtime_wheel)
    return write(project, tag, plan(project, tag, base_image, inputs), workspace)


RUNTIME_EXTRAS = ("redis", "webhooks")
"""What a stateful image adds to the runtime: redis-py and standardwebhooks (pure Python, a
0.7 MB wheel and 7 MB installed with its bytecode; async-timeout on Python 3.11.2), so that
the same image runs as one replica on a folder or as many on Redis, with or without webhooks:
PESTO_JOBS_URL and PESTO_WEBHOOK_* are chosen at run time. A stateless image gets neither."""


def gather(project: Project, cache: Path, runtime_wheel: Path | None = None) -> Inputs:
    """Fetch the resources and resolve the wheels into the cache (network and pip, no engine)."""
    fetched = [resources.fetch(r, project.root, cache) for r in project.build.resources]
    requirements_file = project.root / "requirements.txt"
    project_deps = wheels.wheelhouse(
        cache,
        "resolve the project's requirements.txt and wheel resources",
        requirements_file=requirements_file if requirements_file.is_file() else None,
        local_wheels={f.path: f.sha256 for f in fetched if f.is_wheel},
    )
    runtime = runtime_wheel or wheels.runtime_wheel(cache)
    runtime_deps = wheels.wheelhouse(
        cache,
        "resolve the runtime's dependencies",
        wheels.runtime_requirements(runtime, RUNTIME_EXTRAS if project.api.asynchronous else ()),
    )
    wheel_folders = {
        name: folder
        for name, folder in (("wheels/runtime-deps", runtime_deps), ("wheels/project-deps", project_deps))
        if folder is not None
    }
    return Inputs(
        wheel_folders=wheel_folders,
        wheel_files=tuple(
            f"{name}/{path.name}"
            for name, folder in wheel_folders.items()
            for path in sorted(folder.iterdir())
        ),
        resources={
            f"resources/{index}-{_safe_name(f.resource.name)}": (
                resources.unpacked(f, cache),
                f.resource.target.rstrip("/") + "/",
                f.sha256,
            )
            for index, f in enumerate(fetched)
            if not f.is_wheel
        },
        runtime=wheels.unpacked_runtime(runtime, cache),
    )


def plan(project: Project, tag: str, base_image: str, inputs: Inputs) -> Plan:
    """The two Dockerfiles and the dependencies image's tag, from the project and its inputs.

    A pure function: the tag is a hash of everything the dependencies image is made of, so an
    unchanged one is found by name and its large context is never sent again.
    """
    dependencies_dockerfile = dockerfile.dependencies_dockerfile(
        dockerfile.DependenciesRecipe(
            base_image=base_image,
            wheel_folders=list(inputs.wheel_folders),
            resources=[(name, target) for name, (_, target, _) in inputs.resources.items()],
            volumes=project.build.volumes,
        )
    )
    dependencies_tag = f"{_repository(tag)}-deps:" + digest(
        [
            PLAN_VERSION,
            dependencies_dockerfile,
            *inputs.wheel_files,
            *(sha256 for _, _, sha256 in inputs.resources.values()),
        ],
        length=16,
    )
    service_dockerfile = dockerfile.service_dockerfile(
        dockerfile.ServiceRecipe(
            dependencies_image=dependencies_tag,
            environment=project.build.environments,
            labels=image_labels(project, dependencies_tag),
        )
    )
    return Plan(
        dependencies_tag=dependencies_tag,
        dependencies_dockerfile=dependencies_dockerfile,
        service_dockerfile=service_dockerfile,
        dependencies_links={
            **inputs.wheel_folders,
            **{name: folder for name, (folder, _, _) in inputs.resources.items()},
        },
        service_links={dockerfile.RUNTIME_FOLDER: inputs.runtime},
    )


def write(project: Project, tag: str, plan: Plan, workspace: Path) -> Contexts:
    """Lay both contexts out in the workspace: cache files hard-linked, the project's copied."""
    folder = workspace / ("-".join(project.profiles) or "default")
    contexts = Contexts(folder, folder / "dependencies", folder / "service", plan.dependencies_tag)
    _fresh(contexts.dependencies, plan.dependencies_dockerfile)
    for name, source in plan.dependencies_links.items():
        _link_tree(source, contexts.dependencies / name)
    _fresh(contexts.service, plan.service_dockerfile)
    for name, source in plan.service_links.items():
        _link_tree(source, contexts.service / name)
    project.api.write(contexts.service / "etc" / "pesto")
    shutil.copytree(project.root / PACKAGE, contexts.service / "project" / PACKAGE, ignore=IGNORED)
    make_readable(contexts.folder)
    _write_script(contexts, tag)
    return contexts


def make_readable(folder: Path) -> None:
    """COPY keeps modes, and the service runs as a non-root user: let everyone read.

    A user whose umask is 077, or an archive whose files are 0600, would otherwise give
    the service files it cannot open.
    """
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            _add_mode(Path(root, name), READABLE | SEARCHABLE)
        for name in files:
            _add_mode(Path(root, name), READABLE)


def _add_mode(path: Path, bits: int) -> None:
    if path.is_symlink():
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & bits != bits:
        path.chmod(mode | bits)


def _check_package(project: Project) -> None:
    if not (project.root / PACKAGE / "process.py").is_file():
        raise ProjectError(
            f"{project.root} has no {PACKAGE}/process.py: the image runs the Process class it "
            "defines (see `pesto-pack init` for the layout)"
        )


def _fresh(folder: Path, dockerfile_text: str) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "Dockerfile").write_text(dockerfile_text)


def _link_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target, symlinks=True, copy_function=_link)


def _link(source: str | Path, target: str | Path) -> None:
    """A hard link where the file system allows one, else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _write_script(contexts: Contexts, tag: str) -> None:
    script = contexts.folder / "build.sh"
    script.write_text(
        "#!/bin/sh\n"
        "# Rebuild this service by hand, as `pesto-pack build` last did (Docker or Podman).\n"
        "set -e\n"
        'cd "$(dirname "$0")"\n'
        f"docker build -t {contexts.dependencies_tag} dependencies\n"
        f"docker build -t {tag} service\n"
    )
    script.chmod(0o755)


def _repository(tag: str) -> str:
    """`registry:5000/team/name:1.0` -> `registry:5000/team/name`."""
    head, _, last = tag.rpartition("/")
    return (f"{head}/" if head else "") + last.partition(":")[0]


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:60] or "resource"
