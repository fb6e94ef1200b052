"""`pesto-pack build`: a project folder to a service image, through the Docker API.

The order is the point: the project is loaded and validated, then everything is fetched,
checked and assembled on the host (context.py), and only then is the engine called, once
for the dependencies image when it is not already there, once for the service image.
"""

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import docker

from pesto_pack import project as project_model
from pesto_pack.build import context, engine_images
from pesto_pack.build.engine_build import BuildError, BuildStep, run_build
from pesto_pack.engine import connect
from pesto_pack.errors import ProjectError
from pesto_pack.references import IMAGE_NAME, IMAGE_REFERENCE, IMAGE_TAG

__all__ = ["BuildError", "BuiltImage", "build"]

BASE_IMAGE_VARIABLE = "PESTO_BASE_IMAGE"


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    image_id: str
    dependencies_tag: str
    dependencies_built: bool
    """False when an up-to-date dependencies image was found and reused as is."""
    workspace: Path
    """The folder holding both contexts, build.sh and build.log."""


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def build(
    project_dir: Path,
    profiles: Sequence[str] = (),
    base_image: str | None = None,
    tag: str | None = None,
    no_cache: bool = False,
    runtime_wheel: Path | None = None,
    workspace: Path | None = None,
    client: docker.DockerClient | None = None,
    log: Callable[[str], None] = _stderr,
) -> BuiltImage:
    """Build the project's service image; the base image is `base_image`, else
    $PESTO_BASE_IMAGE, else the project's `dockerBaseImage` after profiles."""
    started = time.monotonic()
    project = project_model.load(project_dir, profiles)
    tag = tag or project.tag
    _check_tag(tag, given=tag != project.tag)
    base = base_image or os.environ.get(BASE_IMAGE_VARIABLE) or project.build.base_image
    workspace = workspace or project.workspace
    log(f"preparing {tag} from {project.root} (base image {base}) in {workspace}")
    contexts = context.prepare(project, tag, base, workspace, runtime_wheel)
    contexts.log_file.write_text("")
    client = client or connect()

    dependencies_built = no_cache or engine_images.image_id(client, contexts.dependencies_tag) is None
    if dependencies_built:
        run_build(
            client,
            BuildStep(
                "dependencies",
                contexts.dependencies,
                contexts.dependencies_tag,
                log,
                contexts.log_file,
                no_cache,
            ),
        )
    else:
        log(f"dependencies: {contexts.dependencies_tag} is up to date")
    replaced = engine_images.image_id(client, tag)
    image_id = run_build(
        client, BuildStep("service", contexts.service, tag, log, contexts.log_file, no_cache)
    )
    if replaced:
        engine_images.remove_replaced(client, replaced, image_id, log)
    log(f"built {tag} in {time.monotonic() - started:.1f} s; Dockerfiles and contexts in {contexts.folder}")
    return BuiltImage(tag, image_id, contexts.dependencies_tag, dependencies_built, contexts.folder)


def _check_tag(tag: str, given: bool) -> None:
    """Refuse a tag the engine would refuse, naming the file or option to change."""
    if given:
        if not IMAGE_REFERENCE.match(tag):
            raise ProjectError(
                f"--tag {tag!r} is not a valid image reference; write NAME:TAG with a lowercase "
                "name (letters, digits, . _ -)"
            )
        return
    name, _, version = tag.partition(":")
    if not IMAGE_NAME.match(name):
        raise ProjectError(
            f"pesto/build/build.json: name {name!r} cannot name an image; use lowercase letters, "
            "digits and . _ - (not at the start or end), or give --tag"
        )
    if not IMAGE_TAG.match(version):
        raise ProjectError(
            f"pesto/build/build.json: version and profiles make the tag {version!r}, which an "
            "image tag cannot be; use letters, digits and . _ - (at most 128), or give --tag"
        )
