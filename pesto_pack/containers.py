"""One service container for a test session: started, awaited, diagnosed, always removed.

The docker SDK is imported here only, and only when a container is needed, so that testing a
running service (`--pesto-url`) works without it. The container publishes its port on
127.0.0.1 only, on a port the engine picks, and carries a generated name so that it can be
found and removed even if the run is interrupted while the engine is still creating it.
"""

import os
import secrets
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from pesto_pack.errors import PestoError

SERVICE_PORT = "8080/tcp"
TEST_LABEL = "org.pesto.test"
RUN_LABEL = "org.pesto.run"
OWNER_LABEL = "org.pesto.owner"
"""`HOST:PID:START` of the process that started a container. A process killed with SIGKILL
cannot remove its containers; the next start on the same host removes those whose owner is
gone (`reap_orphans`), as testcontainers' reaper does."""
LOG_LINES = 30
CREATE_PATIENCE = 3.0
STOP_SECONDS = 10
"""Seconds a one-off command (`pesto-pack run`'s batch) gets to end after SIGTERM."""
"""Seconds to look for a container whose creation was interrupted, before giving up."""


class ContainerError(PestoError):
    """The service container could not be started, or stopped serving."""


class ServiceContainer:
    """A running service container and its loopback URL."""

    def __init__(self, container, url: str):
        self._container = container
        self.name: str = container.name
        self.url = url

    def exit_report(self) -> str | None:
        """None while the container runs; else its exit code and last log lines."""
        try:
            self._container.reload()
        except Exception as error:  # removed behind our back, or the engine is gone
            return f"the container {self.name} is gone ({error})"
        if self._container.status in ("created", "running", "restarting"):
            return None
        return exit_report(self._container)

    def remove(self) -> None:
        """Stop and remove the container; removing one that is gone is not an error."""
        _remove(self._container)


def start(
    image: str,
    start_timeout: float,
    gpus: str | None = None,
    environment: dict[str, str] | None = None,
    label: str = TEST_LABEL,
) -> ServiceContainer:
    """Run `image` and wait until its service is ready; nothing is left running on failure.

    `label` (set to `true`) says who started it, and its last part names it: the test
    session's containers are `org.pesto.test` and `pesto-test-...`, `pesto-pack run`'s
    `org.pesto.run` and `pesto-run-...`."""
    docker = _import_docker()
    with (
        _engine_errors(docker, image),
        _created(
            docker,
            _connect(),
            image,
            label,
            ports={SERVICE_PORT: ("127.0.0.1", None)},
            environment=environment or {},
            device_requests=_device_requests(docker, gpus),
        ) as container,
    ):
        url = f"http://127.0.0.1:{_host_port(container, image)}"
        _wait_ready(container, url, image, start_timeout)
        return ServiceContainer(container, url)


def run_to_end(
    image: str,
    command: list[str],
    write: Callable[[bytes], None],
    label: str,
    gpus: str | None = None,
    **options,
) -> int:
    """Run `command` in a container of `image` to its end, its output handed to `write` as it
    comes; its exit status. The container is removed whatever happens (Ctrl-C included).
    `gpus` as `start`'s; `options` go to the SDK's `containers.run` (volumes, user,
    environment, tty)."""
    docker = _import_docker()
    options["device_requests"] = _device_requests(docker, gpus)
    with (
        _engine_errors(docker, image),
        _created(docker, _connect(), image, label, command=command, **options) as container,
    ):
        try:
            for chunk in container.logs(stream=True, follow=True):
                write(chunk)
            return int(container.wait().get("StatusCode", 1))
        except KeyboardInterrupt:
            _stop(container)
            raise
        finally:
            _remove(container)


def _stop(container) -> None:
    """SIGTERM first, so that the command ends its way (a batch between two items, its last
    answer whole), then SIGKILL after STOP_SECONDS; a second Ctrl-C skips the wait."""
    # Gone already, or the engine refuses: the removal that follows forces it.
    with suppress(_import_docker().errors.DockerException):
        container.stop(timeout=STOP_SECONDS)


@contextmanager
def _engine_errors(docker, image: str) -> Iterator[None]:
    """The engine's own errors as one ContainerError naming the image."""
    try:
        yield
    except docker.errors.DockerException as error:
        explanation = getattr(error, "explanation", None) or error
        raise ContainerError(f"the engine could not run {image}: {explanation}") from None


@contextmanager
def _created(docker, client, image: str, label: str, **run_options) -> Iterator:
    """A new container of `image`, labelled and named after `label`; removed when the block
    fails, Ctrl-C included (the caller removes it when it is done with it)."""
    _require(docker, client, image)
    reap_orphans(client)
    name = _name_for(label)
    container = None
    try:
        container = client.containers.run(image, name=name, detach=True, labels=_labels(label), **run_options)
        yield container
    except BaseException as error:  # KeyboardInterrupt included: never leave it running
        if container is None:  # interrupted while the engine may still be creating it
            refused = isinstance(error, docker.errors.APIError)
            container = _find(docker, client, name, patience=0 if refused else CREATE_PATIENCE)
        _remove(container)
        raise


def _require(docker, client, image: str) -> None:
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        raise ContainerError(
            f"the image {image} is not in the container engine; build it with "
            "`pesto-pack build PROJECT_DIR` (its tag is printed last) or fix the image's name "
            "(--pesto-image, or pesto-pack run's IMAGE)"
        ) from None


def _name_for(label: str) -> str:
    """`pesto-test-1a2b...` for `org.pesto.test`: a generated, findable name."""
    return f"pesto-{label.rsplit('.', 1)[-1]}-{secrets.token_hex(6)}"


def exit_report(container) -> str:
    """`exited with code N` and the container's last log lines."""
    code = container.attrs.get("State", {}).get("ExitCode")
    try:
        logs = container.logs(tail=LOG_LINES).decode("utf-8", "replace").rstrip()
    except Exception as error:
        logs = f"(its logs cannot be read: {error})"
    lines = "\n".join(f"    {line}" for line in logs.splitlines()) or "    (no output)"
    return f"the container {container.name} exited with code {code}; its last log lines:\n{lines}"


def _wait_ready(container, url: str, image: str, timeout: float) -> None:
    """Poll `/api/v1/ready` until it answers 200, the container exits, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while True:
        container.reload()
        if container.status in ("exited", "dead"):
            raise ContainerError(f"{image} did not start: {exit_report(container)}")
        try:
            with opener.open(f"{url}/api/v1/ready", timeout=1.0) as response:
                if response.status == 200:
                    return
        except OSError:  # refused, reset, or 503 while on_start() runs (HTTPError)
            pass
        if time.monotonic() + delay > deadline:
            logs = container.logs(tail=LOG_LINES).decode("utf-8", "replace").rstrip()
            raise ContainerError(
                f"{image} was not ready within {timeout:g} s (GET /api/v1/ready); raise "
                f"--pesto-start-timeout if on_start() is that slow. Its last log lines:\n{logs}"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def _host_port(container, image: str) -> str:
    """The loopback port the engine published the service port on."""
    container.reload()
    bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(SERVICE_PORT)
    if bindings:
        return bindings[0]["HostPort"]
    if container.status in ("exited", "dead"):
        raise ContainerError(f"{image} did not start: {exit_report(container)}")
    raise ContainerError(
        f"the engine published no port for {SERVICE_PORT} of {container.name}; does {image} "
        "EXPOSE 8080 (images built by `pesto-pack build` do)?"
    )


def _device_requests(docker, gpus: str | None) -> list | None:
    """`--pesto-gpus`: `all`, a count (`2`) or device ids (`0,1`), as `docker run --gpus`."""
    if not gpus:
        return None
    if gpus == "all":
        return [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
    if gpus.isdigit():
        return [docker.types.DeviceRequest(count=int(gpus), capabilities=[["gpu"]])]
    return [docker.types.DeviceRequest(device_ids=gpus.split(","), capabilities=[["gpu"]])]


def _find(docker, client, name: str, patience: float):
    """The container named `name`, looked for during `patience` seconds: a create request that
    was interrupted on our side may still be completing in the engine."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return client.containers.get(name)
        except docker.errors.NotFound:
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.1)
        except docker.errors.DockerException:  # the engine is gone: nothing left to remove
            return None


def reap_orphans(client) -> list[str]:
    """Remove the containers started on this host by a process that is gone; their names."""
    docker = _import_docker()
    removed = []
    try:
        candidates = client.containers.list(all=True, filters={"label": OWNER_LABEL})
    except docker.errors.DockerException:
        return removed
    for container in candidates:
        owner = (container.labels or {}).get(OWNER_LABEL, "")
        if not owner_alive(owner):
            try:
                _remove(container)
            except ContainerError:
                continue  # another session removes it at the same time, or it cannot be: next time
            removed.append(container.name)
    return removed


def current_owner() -> str:
    """This process as an owner label: host, pid, and its start time (a reused pid differs)."""
    return f"{socket.gethostname()}:{os.getpid()}:{_started(os.getpid())}"


def owner_alive(owner: str) -> bool:
    """False only when `owner` ran on this host and that process has ended (or its pid now
    belongs to a younger process); an owner on another host, or unreadable, counts as alive."""
    host, _, rest = owner.partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    now = _started(int(pid))
    return now is not None and (now == "" or not started or now == started)


def _started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux /proc), None when it is gone,
    "" where /proc cannot tell."""
    if not os.path.isdir("/proc"):
        return ""
    try:
        with open(f"/proc/{pid}/stat") as file:
            stat = file.read()
    except FileNotFoundError:
        return None
    except OSError:
        return ""
    return stat.rpartition(")")[2].split()[19]


def _labels(label: str) -> dict[str, str]:
    return {label: "true", OWNER_LABEL: current_owner()}


def _remove(container) -> None:
    if container is None:
        return
    docker = _import_docker()
    try:
        container.remove(force=True, v=True)  # v: a stateful image's VOLUME goes with it
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as error:
        raise ContainerError(
            f"the container {container.name} could not be removed ({error}); "
            f"remove it with `docker rm -f -v {container.name}`"
        ) from None


def _import_docker():
    try:
        import docker
    except ImportError:
        raise ContainerError(
            "the docker SDK is needed to start a container for --pesto-image: install it with "
            "`pip install 'pesto-toolkit[test]'`, or test a service that is already running "
            "with --pesto-url=URL"
        ) from None
    return docker


def _connect():
    from pesto_pack.engine import connect

    return connect()
