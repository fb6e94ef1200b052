"""PESTO images in the engine: found by their labels, and what a rebuild leaves behind.

Every service image carries the labels of `labels.image_labels`, so `pesto-pack list` finds
them whatever they are tagged, and a rebuild knows which dependencies image the image it
replaced was built from.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import docker
from docker.errors import APIError, ImageNotFound

from pesto_pack.build.labels import DEPENDENCIES, NAME, PROFILES


@dataclass(frozen=True)
class ServiceImage:
    tag: str
    profiles: str
    size: int
    created: datetime


def image_id(client: docker.DockerClient, tag: str) -> str | None:
    try:
        return client.images.get(tag).id
    except ImageNotFound:
        return None


def service_images(client: docker.DockerClient) -> list[ServiceImage]:
    """Every tag of every image that carries the PESTO name label, newest first."""
    found = []
    for image in client.api.images(filters={"label": NAME}):
        labels = image.get("Labels") or {}
        created = datetime.fromtimestamp(image.get("Created", 0), tz=UTC)
        for tag in image.get("RepoTags") or []:
            if tag != "<none>:<none>":
                found.append(
                    ServiceImage(_short(tag), labels.get(PROFILES, ""), image.get("Size", 0), created)
                )
    return sorted(found, key=lambda i: (i.created, i.tag), reverse=True)


def remove_replaced(
    client: docker.DockerClient, old_id: str, new_id: str, log: Callable[[str], None]
) -> None:
    """Remove the image a rebuild untagged, then its dependencies image if nothing uses it.

    Only those: an image still tagged elsewhere or used by a container is left, with a note.
    """
    if old_id == new_id:
        return
    try:
        old = client.images.get(old_id)
    except ImageNotFound:
        return
    if old.tags:
        return
    old_dependencies = (old.labels or {}).get(DEPENDENCIES)
    if not _remove(client, old_id, "the image this build replaced", log):
        return
    new_dependencies = (client.images.get(new_id).labels or {}).get(DEPENDENCIES)
    if old_dependencies and old_dependencies != new_dependencies:
        try:
            still_used = client.api.images(filters={"label": f"{DEPENDENCIES}={old_dependencies}"})
        except APIError as error:  # Podman fails a listing while another client removes images
            log(f"kept {old_dependencies}: could not check what uses it ({error.explanation or error})")
            return
        if not still_used:
            _remove(client, old_dependencies, "the dependencies image it was built from", log)


def _remove(client: docker.DockerClient, image: str, what: str, log: Callable[[str], None]) -> bool:
    try:
        client.api.remove_image(image, noprune=False)
    except ImageNotFound:
        return True
    except APIError as error:
        log(f"kept {what} ({_short(image)}): {error.explanation or error}")
        return False
    log(f"removed {what} ({_short(image)})")
    return True


def _short(reference: str) -> str:
    """Podman names local images `localhost/...` and Docker Hub ones `docker.io/library/...`."""
    for prefix in ("localhost/", "docker.io/library/"):
        if reference.startswith(prefix):
            return reference.removeprefix(prefix)
    return reference.removeprefix("sha256:")[:12] if reference.startswith("sha256:") else reference
