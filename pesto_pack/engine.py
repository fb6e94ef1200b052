"""The container engine: a docker SDK client of Docker or of Podman serving the Docker API.

Docker's own lookup (`DOCKER_HOST`, then /var/run/docker.sock) comes first; where neither
exists, Podman's system socket is tried, which is what `scripts/setup-engine` starts on
machines with no Docker daemon.

The API version comes from the engine's `/_ping` answer rather than the SDK's `version="auto"`,
which asks `/version`: Podman takes most of a second to answer that, on every command.
"""

import os
from pathlib import Path

import docker
import requests
from docker.errors import DockerException

from pesto_pack.errors import PestoError

DOCKER_SOCKET = Path("/var/run/docker.sock")
PODMAN_SOCKET = Path("/run/podman/podman.sock")
FALLBACK_API_VERSION = "1.41"


def connect() -> docker.DockerClient:
    """A client whose engine has answered a ping; a PestoError says what to do otherwise."""
    use_podman = "DOCKER_HOST" not in os.environ and not DOCKER_SOCKET.exists() and PODMAN_SOCKET.exists()
    options = {"base_url": f"unix://{PODMAN_SOCKET}"} if use_podman else docker.utils.kwargs_from_env()
    where = options.get("base_url", f"unix://{DOCKER_SOCKET}")
    try:
        probe = docker.APIClient(version=FALLBACK_API_VERSION, **options)
        answer = probe.get(probe.base_url + "/_ping", timeout=10)
        answer.raise_for_status()
        version = answer.headers.get("Api-Version", FALLBACK_API_VERSION)
        return docker.DockerClient(version=version, **options)
    except (DockerException, requests.RequestException) as error:
        raise PestoError(
            f"no container engine answers at {where} ({error}). Start Docker, or run "
            "`scripts/setup-engine` (Debian, as root) to start Podman, or set DOCKER_HOST "
            "to the engine's socket."
        ) from None
