"""`pesto-pack push` against a real registry (Debian's docker-registry) on a loopback port."""

import base64
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from balancer_support import get, registry
from build_support import PESTO_PACK, build
from pesto_pack.errors import PestoError
from pesto_pack.push import check_registry, is_loopback, pull, target

ECHO = Path(__file__).parent / "projects" / "echo"


def push_command(image: str, registry_address: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(PESTO_PACK), "push", image, "--registry", registry_address],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="session")
def loopback_registry():
    with registry() as address:
        yield address


@pytest.fixture(scope="session")
def read_only_registry():
    with registry(read_only=True) as address:
        yield address


@pytest.fixture(scope="module")
def probe_image(engine, base_image, tmp_path_factory):
    """An image of its own (the echo service plus a label), so removing it touches no other test."""
    service = build(ECHO)
    folder = tmp_path_factory.mktemp("push-probe")
    (folder / "Dockerfile").write_text(f"FROM {service}\nLABEL org.pesto.test.push={time.time_ns()}\n")
    tag = f"pesto-push-probe:{time.time_ns()}"
    image, _ = engine.images.build(path=str(folder), tag=tag)
    yield tag, image.id
    for reference in list(engine.images.list(filters={"reference": "*pesto-push-probe*"})):
        engine.api.remove_image(reference.id, force=True)


@pytest.mark.engine
def test_push_then_pull_by_digest_gives_the_same_image(engine, loopback_registry, probe_image):
    tag, image_id = probe_image
    done = push_command(tag, loopback_registry)
    assert done.returncode == 0, done.stderr
    reference = done.stdout.strip().splitlines()[-1]
    name, version = tag.split(":")
    assert reference.startswith(f"{loopback_registry}/{name}@sha256:")
    assert f"pushing {tag} as {loopback_registry}/{tag}" in done.stderr
    assert (
        get(f"http://{loopback_registry}/v2/_catalog")[1]
        and name in json.loads(get(f"http://{loopback_registry}/v2/_catalog")[1])["repositories"]
    )
    assert version in json.loads(get(f"http://{loopback_registry}/v2/{name}/tags/list")[1])["tags"]

    engine.api.remove_image(image_id, force=True)  # every tag: the pull must fetch it
    pulled = pull(engine, reference, log=lambda line: None)
    assert pulled == image_id
    engine.images.get(pulled).tag(name, version)  # as it was, for the other tests


@pytest.mark.engine
def test_a_registry_that_refuses_is_named_in_the_error(read_only_registry, probe_image):
    done = push_command(probe_image[0], read_only_registry)
    assert done.returncode == 1
    assert f"the registry {read_only_registry} refused the push" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.engine
def test_a_registry_where_nothing_listens_is_named_in_the_error(probe_image):
    from balancer_support import free_port

    address = f"127.0.0.1:{free_port()}"
    done = push_command(probe_image[0], address)
    assert done.returncode == 1
    assert f"the registry {address} refused the push" in done.stderr
    assert "nothing answers there" in done.stderr


@pytest.mark.engine
def test_pushing_an_image_the_engine_does_not_have_says_to_build_it(loopback_registry):
    done = push_command("no-such-image:0.0.1", loopback_registry)
    assert done.returncode == 1
    assert "no-such-image:0.0.1 is not in the engine; build it first" in done.stderr


@pytest.mark.parametrize("address", ["127.0.0.1:5000", "127.9.9.9", "localhost:5000", "[::1]:5000"])
def test_loopback_registries_are_reached_over_plain_http(address):
    assert is_loopback(check_registry(address))


@pytest.mark.parametrize("address", ["registry.example:5000", "10.0.0.5:5000", "[2001:db8::1]:443"])
def test_other_registries_keep_tls(address):
    assert not is_loopback(check_registry(address))


@pytest.mark.parametrize("address", ["http://127.0.0.1:5000", "127.0.0.1:5000/team", "host:99999", "-bad"])
def test_a_registry_that_is_not_host_and_port_is_refused(address):
    with pytest.raises(PestoError, match="HOST\\[:PORT\\]"):
        check_registry(address)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("echo:1.0.0", ("127.0.0.1:5000/echo", "1.0.0")),
        ("team/echo:1.0.0-gpu", ("127.0.0.1:5000/team/echo", "1.0.0-gpu")),
        ("localhost/echo:2", ("127.0.0.1:5000/echo", "2")),
        ("other.registry:443/team/echo", ("127.0.0.1:5000/team/echo", "latest")),
    ],
)
def test_the_image_is_tagged_into_the_registry(image, expected):
    assert target(image, "127.0.0.1:5000") == expected


@pytest.fixture(scope="session")
def guarded_registry():
    with registry(user=("pesto", "s3cret-pass")) as address:
        yield address


@pytest.mark.engine
def test_credentials_come_from_dockers_config(guarded_registry, probe_image, tmp_path):
    refused = push_command(probe_image[0], guarded_registry)
    assert refused.returncode == 1
    assert f"the registry {guarded_registry} refused the push" in refused.stderr
    config = tmp_path / "docker-config"
    config.mkdir()
    token = base64.b64encode(b"pesto:s3cret-pass").decode()
    (config / "config.json").write_text(json.dumps({"auths": {guarded_registry: {"auth": token}}}))
    done = subprocess.run(
        [str(PESTO_PACK), "push", probe_image[0], "--registry", guarded_registry],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"DOCKER_CONFIG": str(config)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith(f"{guarded_registry}/pesto-push-probe@sha256:")
