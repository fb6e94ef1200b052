"""Real servers on loopback for the push and balancer tests (and bench/bench_balancer.py).

Debian's `docker-registry` (the CNCF distribution registry) and `haproxy`, and replicas of a
service image run through the engine, each on its own free 127.0.0.1 port. Every one is a
context manager that stops what it started, also when the body fails.
"""

import contextlib
import http.client
import json
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REGISTRY_BINARY = "/usr/bin/docker-registry"
HAPROXY_BINARY = "/usr/sbin/haproxy"
CONTAINER_PORT = "8080/tcp"
START_TIMEOUT = 60.0
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with NO_PROXY.open(url, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _wait_until(check, what: str, timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    shown = log.read_text()[-3000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} not up after {timeout} s\n{shown}")


@contextmanager
def _process(command: list[str], log: Path) -> Iterator[subprocess.Popen]:
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def registry(read_only: bool = False, user: tuple[str, str] | None = None) -> Iterator[str]:
    """A distribution registry on a free loopback port, storing in a temporary folder removed
    at the end; its HOST:PORT. `user` (name, password): the registry asks for them (htpasswd,
    bcrypt)."""
    with tempfile.TemporaryDirectory(prefix="pesto-registry-") as temporary:
        yield from _registry(Path(temporary), read_only, user)


def _registry(folder: Path, read_only: bool, user: tuple[str, str] | None) -> Iterator[str]:
    port = free_port()
    address = f"127.0.0.1:{port}"
    maintenance = "  maintenance:\n    readonly:\n      enabled: true\n" if read_only else ""
    authentication = ""
    folder.mkdir(parents=True, exist_ok=True)
    if user:
        (folder / "htpasswd").write_text(f"{user[0]}:{_bcrypt(user[1])}\n")
        authentication = f"auth:\n  htpasswd:\n    realm: pesto-test\n    path: {folder / 'htpasswd'}\n"
    config = folder / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {folder / 'data'}\n{maintenance}{authentication}http:\n  addr: {address}\n"
    )
    log = folder / "registry.log"
    with _process([REGISTRY_BINARY, "serve", str(config)], log):
        expected = 401 if user else 200
        _wait_until(lambda: get(f"http://{address}/v2/")[0] == expected, "docker-registry", 20, log)
        yield address


def _bcrypt(password: str) -> str:
    """The registry's htpasswd takes bcrypt only; the C library's crypt(3) makes it."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))


@dataclass
class Replica:
    """One container of the service image, published on its own loopback port."""

    name: str
    port: int
    container: object = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Fleet:
    """Replicas of one image: started, stopped, killed and started again one by one."""

    engine: object
    image: str
    replicas: list[Replica]
    options: dict = field(default_factory=dict)
    """Further `containers.run` arguments (`as_in_deployment()` gives the manifests' own)."""

    def start(self, replica: Replica) -> None:
        if replica.container is None:
            options = dict(self.options)
            if options.get("network_mode") == "host":
                # The host's own loopback (where redis-server listens): the service listens
                # on 127.0.0.1 at the replica's port itself.
                options["environment"] = options.get("environment", {}) | {
                    "PESTO_HOST": "127.0.0.1",
                    "PESTO_PORT": str(replica.port),
                }
            else:
                options["ports"] = {CONTAINER_PORT: ("127.0.0.1", replica.port)}
            replica.container = self.engine.containers.run(
                self.image, detach=True, name=replica.name, **options
            )
        else:
            replica.container.start()
        self.wait_ready(replica)

    def wait_ready(self, replica: Replica, timeout: float = START_TIMEOUT) -> None:
        def ready() -> bool:
            replica.container.reload()
            if replica.container.status in ("exited", "dead"):
                raise RuntimeError(f"{replica.name} stopped:\n{self.logs(replica)}")
            return get(replica.url + "/api/v1/ready", timeout=2)[0] == 200

        _wait_until(ready, replica.name, timeout)

    def terminate(self, replica: Replica, timeout: float = 30.0) -> float:
        """SIGTERM and wait for the exit, as a rolling restart does; seconds it took."""
        started = time.monotonic()
        replica.container.kill(signal="SIGTERM")
        replica.container.wait(timeout=timeout)
        return time.monotonic() - started

    def kill(self, replica: Replica) -> None:
        replica.container.kill(signal="SIGKILL")

    def logs(self, replica: Replica) -> str:
        return replica.container.logs().decode(errors="replace")[-3000:]

    def remove(self) -> None:
        for replica in self.replicas:
            if replica.container is not None:
                with contextlib.suppress(Exception):  # gone already: the others must still go
                    replica.container.remove(force=True)


@contextmanager
def fleet(engine, image: str, count: int, options: dict | None = None) -> Iterator[Fleet]:
    """`count` ready replicas of `image`; every container removed on exit."""
    stamp = f"{int(time.time() * 1000) % 10**9}"
    replicas = [Replica(f"pesto-replica-{stamp}-{i}", free_port()) for i in range(count)]
    started = Fleet(engine, image, replicas, dict(options or {}))
    try:
        for replica in replicas:
            started.start(replica)
        yield started
    finally:
        started.remove()


def as_in_deployment(deployment: dict, **environment: str) -> dict:
    """`containers.run` arguments that run a replica as the generated Deployment would: its
    environment, its user, no capabilities, no privilege escalation, a read-only root with a
    tmpfs for each emptyDir, its CPU and memory limits. What the cluster would refuse or break
    shows here first."""
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
    limits = container["resources"]["limits"]
    values = {e["name"]: e["value"] for e in container["env"] if "value" in e and "$(" not in e["value"]}
    return {
        "environment": values | environment,
        "user": f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}",
        "read_only": True,
        "tmpfs": {mount["mountPath"]: "" for mount in container["volumeMounts"]},
        "cap_drop": security["capabilities"]["drop"],
        "security_opt": ["no-new-privileges"],
        "nano_cpus": int(float(limits["cpu"].removesuffix("m")) * 1e6),
        "mem_limit": limits["memory"].replace("Mi", "m"),
    }


@dataclass(frozen=True)
class CheckTimings:
    """How HAProxy checks `/api/v1/ready`: the figures the rolling restart depends on."""

    interval_ms: int = 500
    fall: int = 2
    rise: int = 2

    @property
    def down_within(self) -> float:
        """Seconds from a replica's first failing answer to HAProxy taking it out: the next
        check comes within one interval, then `fall` failed checks in a row."""
        return self.interval_ms * self.fall / 1000

    @property
    def drain_delay(self) -> float:
        """PESTO_DRAIN_DELAY for the replicas: longer than `down_within`, with one interval to
        spare, so that HAProxy has stopped sending before connections are refused."""
        return self.down_within + self.interval_ms / 1000


def haproxy_config(
    port: int, servers: list[Replica], socket_path: Path, checks: CheckTimings, server_close: bool = True
) -> str:
    """The balancer's configuration: docs/deploy.md explains each line. `server_close`: a new
    connection to the replica for each request (`option http-server-close`); without it, a
    request sent on a kept-alive connection to a replica that has just died fails."""
    lines = [
        "global",
        f"    stats socket {socket_path} mode 600 level admin",
        "    maxconn 512",
        "    log stdout format raw local0",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout http-request 10s",
        "    retries 3",
        "    option redispatch 1",
        "    retry-on conn-failure empty-response 503",
        *(["    option http-server-close"] if server_close else []),
        "frontend pesto",
        f"    bind 127.0.0.1:{port}",
        "    default_backend replicas",
        "backend replicas",
        "    balance leastconn",
        "    option httpchk GET /api/v1/ready",
        "    http-check expect status 200",
        f"    default-server check inter {checks.interval_ms}ms fall {checks.fall} rise {checks.rise}",
    ]
    lines += [f"    server {r.name} 127.0.0.1:{r.port}" for r in servers]
    return "\n".join(lines) + "\n"


@dataclass
class Balancer:
    """A running HAProxy: its URL and its runtime socket (`show stat`)."""

    url: str
    socket_path: Path
    checks: CheckTimings

    def command(self, text: str) -> str:
        with socket.socket(socket.AF_UNIX) as connection:
            connection.connect(str(self.socket_path))
            connection.sendall(text.encode() + b"\n")
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers(self) -> dict[str, dict[str, str]]:
        """Each server's row of `show stat` (status, stot = sessions sent to it, ...)."""
        text = self.command("show stat").lstrip("# ")
        header, *rows = [line.split(",") for line in text.splitlines() if line]
        table = [dict(zip(header, row, strict=False)) for row in rows]
        return {
            row["svname"]: row
            for row in table
            if row["pxname"] == "replicas" and row["svname"] not in ("BACKEND", "FRONTEND")
        }

    def wait_status(self, server: str, status: str, timeout: float = 30.0) -> float:
        """Seconds until HAProxy reports `server` in `status` (UP, DOWN, ...)."""
        started = time.monotonic()
        _wait_until(
            lambda: self.servers()[server]["status"].startswith(status),
            f"{server} {status} in haproxy",
            timeout,
        )
        return time.monotonic() - started


@contextmanager
def haproxy(
    servers: list[Replica], checks: CheckTimings = CheckTimings(), server_close: bool = True
) -> Iterator[Balancer]:
    """HAProxy on a free loopback port in front of `servers`, once every one is UP; its
    configuration, socket and log in a temporary folder removed at the end."""
    with tempfile.TemporaryDirectory(prefix="pesto-haproxy-") as temporary:
        yield from _haproxy(Path(temporary), servers, checks, server_close)


def _haproxy(
    folder: Path, servers: list[Replica], checks: CheckTimings, server_close: bool
) -> Iterator[Balancer]:
    port = free_port()
    socket_path = folder / "haproxy.sock"
    config = folder / "haproxy.cfg"
    config.write_text(haproxy_config(port, servers, socket_path, checks, server_close))
    log = folder / "haproxy.log"
    with _process([HAPROXY_BINARY, "-f", str(config), "-db"], log):
        _wait_until(socket_path.exists, "haproxy", 10, log)
        balancer = Balancer(f"http://127.0.0.1:{port}", socket_path, checks)
        for server in servers:
            balancer.wait_status(server.name, "UP")
        yield balancer


def post_json(connection: http.client.HTTPConnection, path: str, body: dict) -> tuple[int, bytes]:
    """One POST on a kept-alive connection; the status and body."""
    connection.request("POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    answer = connection.getresponse()
    return answer.status, answer.read()
