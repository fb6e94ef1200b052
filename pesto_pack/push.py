"""Push a service image to a registry through the engine's API, as `docker push` does.

`pesto-pack push IMAGE --registry HOST[:PORT]` tags the image `HOST[:PORT]/NAME:TAG` and asks
the engine to push it, showing the engine's progress lines as they come.

A registry on the loopback network (127.0.0.0/8, `localhost`, `::1`) usually speaks plain
HTTP. Docker treats such a registry as insecure by default; Podman does not, and refuses
with "server gave HTTP response to HTTPS client" unless the request says `tlsVerify=false`,
a query parameter of Podman's Docker-compatible API that the docker SDK never sends. So the
push goes through the SDK's low-level client and adds it, for a loopback registry only
(Docker ignores the parameter). Any other registry is reached over TLS as the engine's own
configuration says.

Credentials come from where the engine's users keep them: `docker login` writes them to
`~/.docker/config.json` (or `$DOCKER_CONFIG`), whose entry for the registry is sent; when it
has none, no credentials are sent and Podman uses its own (`podman login`'s auth.json).
"""

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import docker
from docker import auth
from docker.errors import APIError, ImageNotFound

from pesto_pack.errors import PestoError

REGISTRY = re.compile(
    r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::(?P<port>[0-9]{1,5}))?$"
)
DIGEST = re.compile(r"\bdigest: (?P<digest>sha256:[0-9a-f]{64})\b")
LOOPBACK_NAMES = ("localhost",)
PODMAN_API = "/v4.0.0/libpod"
"""Podman's own API, beside its Docker-compatible one: its pull takes `tlsVerify`."""


@dataclass(frozen=True)
class Pushed:
    """An image the registry holds: `reference` names it by digest, `tagged` by tag."""

    tagged: str
    digest: str

    @property
    def reference(self) -> str:
        """`HOST:PORT/NAME@sha256:...`: what a Deployment should run, immutable."""
        return f"{self.tagged.rpartition(':')[0]}@{self.digest}"


def push(
    engine: docker.DockerClient, image: str, registry: str, log: Callable[[str], None] = print
) -> Pushed:
    """Tag `image` into `registry` and push it; the pushed reference with its digest."""
    host = check_registry(registry)
    try:
        local = engine.images.get(image)
    except ImageNotFound:
        raise PestoError(
            f"image {image} is not in the engine; build it first (`pesto-pack build`) or name "
            "another (`pesto-pack list` shows them)"
        ) from None
    repository, tag = target(image, registry)
    tagged = f"{repository}:{tag}"
    added_tag = tagged not in local.tags
    local.tag(repository, tag)
    log(f"pushing {image} as {tagged}")
    params = {"tag": tag}
    if is_loopback(host):
        params["tlsVerify"] = "false"
    headers = {}
    credentials = auth.get_config_header(engine.api, registry)
    if credentials:
        headers["X-Registry-Auth"] = credentials
    api = engine.api
    try:
        answer = api._post(
            api._url("/images/{0}/push", repository), params=params, headers=headers, stream=True
        )
        api._raise_for_status(answer)
        digest = _follow(api._stream_helper(answer, decode=True), registry, tagged, log)
    except (APIError, PestoError) as error:
        if added_tag:
            engine.api.remove_image(tagged, noprune=True)  # that tag only, not the image
        if isinstance(error, PestoError):
            raise
        raise _refused(registry, tagged, error.explanation or str(error)) from None
    if digest is None:
        raise PestoError(
            f"the engine pushed {tagged} but did not say its digest; check the registry "
            f"({registry}/v2/{repository.partition('/')[2]}/tags/list)"
        )
    return Pushed(tagged, digest)


def pull(engine: docker.DockerClient, reference: str, log: Callable[[str], None] = print) -> str:
    """Pull `reference` (by tag or digest) from its registry; the image's id.

    The same loopback rule as `push`: Podman's Docker-compatible pull has no `tlsVerify`, so
    from a loopback registry it goes through Podman's own pull endpoint, which has.
    """
    host = check_registry(reference.split("/", 1)[0])
    if not (is_loopback(host) and _is_podman(engine)):
        return engine.images.pull(reference).id
    api = engine.api
    answer = api._post(
        api.base_url + PODMAN_API + "/images/pull",
        params={"reference": reference, "tlsVerify": "false"},
        stream=True,
    )
    api._raise_for_status(answer)
    for line in api._stream_helper(answer, decode=True):
        if line.get("error"):
            raise PestoError(f"pulling {reference} failed: {line['error']}")
        text = (line.get("stream") or line.get("status") or "").strip()
        if text:
            log(text)
    return engine.images.get(reference).id


def check_registry(registry: str) -> str:
    """The host part of `HOST[:PORT]`; a clear error for a URL or a path."""
    if "://" in registry or "/" in registry:
        raise PestoError(
            f"--registry {registry!r} must be HOST[:PORT] only, as in `127.0.0.1:5000` "
            "(no scheme, no path: the engine chooses https or http)"
        )
    match = REGISTRY.match(registry)
    if not match or (match["port"] and not 0 < int(match["port"]) < 65536):
        raise PestoError(f"--registry {registry!r} is not HOST[:PORT], as in `127.0.0.1:5000`")
    return match["host"].strip("[]")


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: where Docker allows plain HTTP with no configuration."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def target(image: str, registry: str) -> tuple[str, str]:
    """`(REGISTRY/PATH, TAG)` for `image`: its own registry host, if it names one, is replaced."""
    name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "latest")
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        name = rest
    return f"{registry}/{name}", tag


def _follow(lines: Iterable[dict], registry: str, tagged: str, log: Callable[[str], None]) -> str | None:
    """Show the engine's progress (one line per layer state, not per byte); the digest."""
    digest = None
    shown: dict[str, str] = {}
    for line in lines:
        if line.get("error") or line.get("errorDetail"):
            message = line.get("error") or line["errorDetail"].get("message", "")
            raise _refused(registry, tagged, message)
        aux = line.get("aux") or {}
        digest = aux.get("Digest") or digest
        status = (line.get("status") or "").strip()
        found = DIGEST.search(status)
        if found:
            digest = found["digest"]
        layer = line.get("id")
        if layer and shown.get(layer) == status:
            continue  # "Pushing" again, with more bytes: the state has not changed
        if layer:
            shown[layer] = status
        if status:
            log(f"{layer}: {status}" if layer else status)
    return digest


def _refused(registry: str, tagged: str, message: str) -> PestoError:
    hint = "check that it runs and that this machine may push to it (`docker login` / `podman login`)"
    if "HTTP response to HTTPS client" in message:
        hint = (
            "it speaks plain HTTP; only a registry on 127.0.0.0/8 or localhost is pushed to over "
            "HTTP without configuration: declare this one insecure in the engine's settings, or "
            "give it TLS"
        )
    elif "connection refused" in message.lower():
        hint = "nothing answers there: start the registry or check HOST:PORT"
    return PestoError(f"the registry {registry} refused the push of {tagged}: {message.strip()} ({hint})")


def _is_podman(engine: docker.DockerClient) -> bool:
    components = engine.version().get("Components") or []
    return any("podman" in (c.get("Name") or "").lower() for c in components)
