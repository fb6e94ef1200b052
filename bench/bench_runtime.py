#!/usr/bin/env python3
"""The runtime benchmark: pesto-serve against the bare web stack and the original PESTO, in one run.

    python3 bench/bench_runtime.py [--quick] [--json FILE]

On a fresh Debian machine (as root) it installs what it needs, and nothing in the repository:
wrk from Debian's packages when it is missing, and two virtualenvs under $PESTO_BENCH_CACHE
(default ~/.cache/pesto-bench): `pesto` with this repository's working tree installed (not
editable, as in an image; installed again when it changes) and `original` with
processing-factory==1.7.2 from PyPI. Every comparison runs in the same run, on 127.0.0.1
only, bounded in time, and the script prints the tables that BENCHMARKS.md holds.
bench/README.md says what each figure is.

Only the standard library: the services and the floor run in their own virtualenvs.
"""

import argparse
import hashlib
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import venv
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HERE = REPO / "bench" / "runtime"
PROJECTS = HERE / "projects"
CACHE = Path(os.environ.get("PESTO_BENCH_CACHE", Path.home() / ".cache" / "pesto-bench"))
RUN = CACHE / "run"

# `six` is imported by the original's build step (service.json), which does not declare it.
ORIGINAL_REQUIREMENTS = ["processing-factory==1.7.2", "six"]
TOOLKIT_FILES = ("pyproject.toml", "README.md", "pesto_pack", "pesto_serve", "pytest_pesto")
IMAGE_SIZES = (256, 1024, 4096)
ECHO_BODY = {"text": "hello, pesto", "number": 4.2}
MEMORY_REQUESTS = 5_000
IMAGE_TIME_CAP = 4
"""A size's rounds stop after this many times its seconds, even short of the minimum count."""
STARTS = 5
PARTS = ("large", "flood", "slow", "noop", "images", "concurrency")
"""The parts of a run, in the order they run (`--only` picks some)."""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
HEALTH = "/api/v1/health"
READY = "/api/v1/ready"
PROCESS = "/api/v1/process"


@dataclass(frozen=True)
class Budget:
    """Seconds per measurement; `--quick` scales them down for a smoke run."""

    noop_seconds: int = 3
    noop_rounds: int = 5
    warmup_seconds: int = 1
    sleep_seconds: int = 5
    image_seconds: dict = field(default_factory=lambda: {256: 8.0, 1024: 15.0, 4096: 20.0})
    image_minimum: dict = field(default_factory=lambda: {256: 10, 1024: 5, 4096: 2})
    memory_requests: int = MEMORY_REQUESTS
    memory_seconds: float = 60.0
    """At most this long for each batch of requests (the original may be too slow for 5,000)."""
    large_size: int = 4096
    large_requests: int = 16
    flood_requests: int = 20

    def quick(self) -> "Budget":
        return Budget(
            noop_seconds=2,
            noop_rounds=1,
            warmup_seconds=1,
            sleep_seconds=2,
            image_seconds={size: s / 4 for size, s in self.image_seconds.items()},
            image_minimum={256: 3, 1024: 2, 4096: 1},
            memory_requests=1_000,
            memory_seconds=20.0,
            large_size=2048,
            large_requests=6,
            flood_requests=10,
        )


# ---------------------------------------------------------------- setup: wrk and virtualenvs


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("wrk is missing: install it (`sudo apt-get install wrk`) or run this as root")
    print("installing wrk from Debian's packages ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return shutil.which("wrk") or sys.exit("apt-get installed wrk but it is not on PATH")


def ensure_venv(name: str, requirements: list[str], fingerprint: str = "") -> Path:
    """A virtualenv under the cache with `requirements`, made again only when they change."""
    folder = CACHE / name
    marker = folder / ".bench-installed"
    wanted = json.dumps([requirements, fingerprint])
    if marker.exists() and marker.read_text() == wanted:
        return folder / "bin" / "python"
    print(f"creating the `{name}` virtualenv in {folder} ...", flush=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(folder)
    log = CACHE / f"{name}-pip.log"
    with log.open("w") as out:
        result = subprocess.run(
            [folder / "bin" / "pip", "install", "--disable-pip-version-check", *requirements],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if result.returncode != 0:
        sys.exit(f"pip could not install {requirements} in {folder}; see {log}")
    marker.write_text(wanted)
    return folder / "bin" / "python"


def install_toolkit() -> Path:
    """The `pesto` virtualenv with the working tree's toolkit installed as an image has it.

    Not editable (an editable finder slows every import, so start-up): the sources are copied
    out of the repository and installed again whenever they change; the dependencies are
    installed again only when pyproject.toml changes.
    """
    source = CACHE / "toolkit-src"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    for name in TOOLKIT_FILES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif (REPO / name).exists():
            shutil.copy2(REPO / name, source / name)
    python = ensure_venv("pesto", [str(source), "setuptools>=68"], tree_digest(source / "pyproject.toml"))
    marker = CACHE / "pesto" / ".bench-toolkit"
    digest = tree_digest(source)
    if not marker.exists() or marker.read_text() != digest:
        subprocess.run(
            [
                python,
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-deps",
                "--no-build-isolation",
                "--force-reinstall",
                "-q",
                source,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        marker.write_text(digest)
    return python


def tree_digest(path: Path) -> str:
    files = sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file())
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(path.parent)).encode() + file.read_bytes())
    return digest.hexdigest()


# ---------------------------------------------------------------- services


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Service:
    """One server process on 127.0.0.1, started and stopped by the benchmark."""

    def __init__(self, name: str, command: list, env: dict | None = None, ready: str | None = None):
        """`ready`: a path that answers 200 once the server takes work (pesto-serve's health
        answers while its start thread still runs); `start()` waits for it, uncounted."""
        self.name = name
        self.ready = ready
        self.port = free_port()
        self.command = [str(part) for part in command] + ["--port", str(self.port)]
        self.env = {**os.environ, **(env or {})}
        self.log = RUN / "logs" / f"{name.replace(' ', '-')}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> float:
        """Start the server; the seconds from launch to the first 200 on health."""
        self.stop()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        launched = time.perf_counter()
        self.process = subprocess.Popen(
            self.command, stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=RUN
        )
        out.close()
        while time.perf_counter() - launched < 60:
            if self.process.poll() is not None:
                sys.exit(f"{self.name} exited with {self.process.returncode}; see {self.log}")
            if health_status(self.port) == 200:
                seconds = time.perf_counter() - launched
                self.start_cpu_s = self.cpu_s()  # at the first 200 on health, as the time
                self._wait_ready(launched)
                return seconds
            time.sleep(0.002)
        sys.exit(f"{self.name} gave no 200 on {HEALTH} within 60 s; see {self.log}")

    def _wait_ready(self, launched: float) -> None:
        while self.ready and health_status(self.port, self.ready) != 200:
            if self.process.poll() is not None or time.perf_counter() - launched > 60:
                sys.exit(f"{self.name} gave no 200 on {self.ready} within 60 s; see {self.log}")
            time.sleep(0.002)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def rss_mb(self) -> float:
        """Resident memory of the server and any processes it started (VmRSS)."""
        return sum(vm_rss_kib(pid) for pid in process_tree(self.process.pid)) / 1024

    def cpu_s(self) -> float:
        """CPU time (user + system) the server has used: other load on the machine barely
        changes it, where it can halve requests per second."""
        return sum(cpu_ticks(pid) for pid in process_tree(self.process.pid)) / CLOCK_TICKS


def health_status(port: int, path: str = HEALTH) -> int | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def process_tree(pid: int) -> list[int]:
    """The process and its descendants; threads and children may end while they are read."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children = task.read_text().split()
        except FileNotFoundError:
            continue
        for child in children:
            pids += process_tree(int(child))
    return pids


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # a child that has just ended
        return 0
    return int(fields[11]) + int(fields[12])


def vm_rss_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:  # a child that has just ended
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# ---------------------------------------------------------------- load


@dataclass
class Load:
    """What a closed-loop load run saw."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int]
    socket_errors: int = 0
    cpu_us: float = 0.0
    """The server's CPU time per answer, when measured."""

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def ok_per_second(self) -> float:
        return self.ok / self.seconds

    def count(self, low: int, high: int) -> int:
        return sum(n for status, n in self.statuses.items() if low <= status <= high)


def wrk_load(wrk: str, port: int, body: Path, connections: int, seconds: int) -> Load:
    """wrk posting `body` over `connections` keep-alive connections for `seconds` (whole).

    One wrk thread whatever the connections: a second thread would take a core from the
    server on a small machine, and one thread is how the figures quoted in the issues were
    taken, so the two agree."""
    command = [
        wrk,
        "-t",
        "1",
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--timeout",
        "30s",
        "-s",
        str(HERE / "post.lua"),
        f"http://127.0.0.1:{port}{PROCESS}",
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "BENCH_BODY": str(body)}
    )
    line = next((text for text in result.stdout.splitlines() if text.startswith("BENCH ")), None)
    if result.returncode != 0 or line is None:
        sys.exit(f"wrk failed: {result.stderr or result.stdout}")
    figures = json.loads(line.removeprefix("BENCH "))
    return Load(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1e3,
        p99_ms=figures["p99_us"] / 1e3,
        statuses={int(k): v for k, v in figures["statuses"].items()},
        socket_errors=figures["socket_errors"],
    )


class Client:
    """One keep-alive connection posting to a service; every answer must be a 200.

    Used where wrk does not fit: an exact request count (memory), and images, where a run
    holds a handful of multi-second requests and wrk would drop the one in flight at its end.
    """

    def __init__(self, port: int):
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def post(self, body: bytes) -> tuple[float, bytes]:
        """Seconds from sending the request to having read the whole answer, and the answer.

        A connection the server closed while idle (uvicorn does after 5 s) is opened again.
        """
        try:
            return self._post(body)
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            self.connection.close()
            return self._post(body)

    def _post(self, body: bytes) -> tuple[float, bytes]:
        begin = time.perf_counter()
        self.connection.request("POST", PROCESS, body, {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        answer = response.read()
        seconds = time.perf_counter() - begin
        if response.status != 200:
            sys.exit(f"POST {PROCESS} on port {self.port} answered {response.status}: {answer[:300]!r}")
        return seconds, answer

    def close(self) -> None:
        self.connection.close()


# ---------------------------------------------------------------- the measurements


@dataclass
class Results:
    large: dict = field(default_factory=dict)
    flood: dict = field(default_factory=dict)
    slow: dict = field(default_factory=dict)
    footprint: dict = field(default_factory=dict)
    noop: dict = field(default_factory=dict)
    images: dict = field(default_factory=dict)
    concurrency: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)


def measure_footprint(services: list[Service], body: bytes, budget: Budget, results: Results) -> None:
    """Start to first 200 and the CPU used by then, STARTS times, the services taking turns;
    then RSS right after a start, after 5,000 requests and after 5,000 more (the first ones
    warm caches up; growth after them would be a leak). Leaves the services running."""
    starts: dict[str, list[tuple[float, float]]] = {service.name: [] for service in services}
    for _ in range(STARTS):
        for service in services:
            wall = service.start()
            starts[service.name].append((wall, service.start_cpu_s))
            service.stop()
    for service in services:
        service.start()
        rss, counts = [service.rss_mb()], []
        client = Client(service.port)
        try:
            for _ in range(2):
                deadline = time.perf_counter() + budget.memory_seconds
                count = 0
                while count < budget.memory_requests and time.perf_counter() < deadline:
                    _, answer = client.post(body)
                    count += 1
                rss.append(service.rss_mb())
                counts.append(count)
        finally:
            client.close()
        if json.loads(answer) != json.loads(body):
            sys.exit(f"{service.name} did not echo the body: {answer[:300]!r}")
        walls = [wall for wall, _ in starts[service.name]]
        results.footprint[service.name] = {
            "start_s": statistics.median(walls),
            "start_best_s": min(walls),
            "starts_s": walls,
            "start_cpu_s": statistics.median(cpu for _, cpu in starts[service.name]),
            "rss_mb": rss,
            "requests": counts,
        }


def measure_noop(wrk: str, services: list[Service], body: Path, budget: Budget, results: Results) -> None:
    """Rounds interleave the services, so that a burst of load from elsewhere hits all of them."""
    for service in services:
        wrk_load(wrk, service.port, body, 8, budget.warmup_seconds)
    runs: dict = {}
    for _ in range(budget.noop_rounds):
        for connections in (1, 8):
            for service in services:
                cpu = service.cpu_s()
                load = wrk_load(wrk, service.port, body, connections, budget.noop_seconds)
                load.cpu_us = (service.cpu_s() - cpu) / max(load.requests, 1) * 1e6
                runs.setdefault((service.name, connections), []).append(load)
    for (name, connections), loads in runs.items():
        best = max(loads, key=lambda load: load.ok_per_second)
        rates = sorted(load.ok_per_second for load in loads)
        results.noop[f"{name}|{connections}"] = {
            "service": name,
            "connections": connections,
            "ok_per_s": best.ok_per_second,
            "median_ok_per_s": statistics.median(rates),
            "min_ok_per_s": rates[0],
            "p50_ms": best.p50_ms,
            "p99_ms": best.p99_ms,
            "cpu_us": min(load.cpu_us for load in loads),
            "all_per_s": [load.requests / load.seconds for load in loads],
            "rounds_ok_per_s": [load.ok_per_second for load in loads],
            "requests": sum(load.requests for load in loads),
            "429": sum(load.count(429, 429) for load in loads),
            "5xx": sum(load.count(500, 599) for load in loads),
            "other_non_2xx": sum(
                load.requests - load.ok - load.count(429, 429) - load.count(500, 599) for load in loads
            ),
            "socket_errors": sum(load.socket_errors for load in loads),
        }


def measure_images(
    services: list[Service], pesto_python: Path, images: Path, budget: Budget, results: Results
) -> None:
    """Rounds of one request to each service and one floor round trip, so that load from
    elsewhere on the machine falls on all three alike; wall time and CPU time per image."""
    clients = [Client(service.port) for service in services]
    try:
        for size in IMAGE_SIZES:
            body = (images / f"{size}.json").read_bytes()
            floor = subprocess.Popen(
                [pesto_python, HERE / "images.py", "floor", images / f"{size}.png"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            samples: dict[str, list[tuple[float, float]]] = {}
            started = time.perf_counter()
            seconds = budget.image_seconds[size]
            try:
                while not samples or (
                    (
                        len(samples["floor"]) < budget.image_minimum[size]
                        or time.perf_counter() - started < seconds
                    )
                    and time.perf_counter() - started < IMAGE_TIME_CAP * seconds
                ):
                    for service, client in zip(services, clients, strict=True):
                        cpu = service.cpu_s()
                        wall, answer = client.post(body)
                        samples.setdefault(service.name, []).append((wall, service.cpu_s() - cpu))
                        if size == IMAGE_SIZES[0] and len(samples[service.name]) == 1:
                            check_image(pesto_python, images / f"{size}.png", answer, service.name)
                    floor.stdin.write("\n")
                    floor.stdin.flush()
                    sample = json.loads(floor.stdout.readline())
                    samples.setdefault("floor", []).append((sample["wall_s"], sample["cpu_s"]))
            finally:
                floor.stdin.close()
                floor.wait()
            for name, pairs in samples.items():
                walls, cpus = [wall for wall, _ in pairs], [cpu for _, cpu in pairs]
                results.images[f"{name}|{size}"] = {
                    "service": name,
                    "size": size,
                    "n": len(pairs),
                    "p50_s": statistics.median(walls),
                    "best_s": min(walls),
                    "per_s": len(walls) / sum(walls),
                    "cpu_s": statistics.median(cpus),
                    "walls_s": walls,
                }
    finally:
        for client in clients:
            client.close()


def check_image(pesto_python: Path, png: Path, answer: bytes, name: str) -> None:
    path = RUN / f"answer-{name.replace(' ', '-')}.json"
    path.write_bytes(answer)
    subprocess.run([pesto_python, HERE / "images.py", "check", png, path], check=True)


def measure_concurrency(
    wrk: str, services: list[tuple[Service, int]], body: Path, budget: Budget, results: Results
) -> None:
    for service, slots in services:
        service.start()
        wrk_load(wrk, service.port, body, 8, budget.warmup_seconds)
        load = wrk_load(wrk, service.port, body, 8, budget.sleep_seconds)
        service.stop()
        results.concurrency[service.name] = {
            "service": service.name,
            "slots": slots,
            "ok_per_s": load.ok_per_second,
            "p50_ms": load.p50_ms,
            "p99_ms": load.p99_ms,
            "requests": load.requests,
            "non_2xx": load.requests - load.ok,
            "socket_errors": load.socket_errors,
        }


def vm_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def reset_peak(pid: int) -> None:
    """Start VmHWM (the peak RSS) again from the current RSS (Linux's clear_refs, 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def measure_large_images(make_service, images: Path, budget: Budget, results: Results) -> None:
    """Large images one after another to a one-slot image echo: RSS after each, with the
    runtime's malloc arena cap and with glibc's default (8 per core), the runs interleaved
    request by request so that load from elsewhere falls on both alike."""
    body = (images / f"{budget.large_size}.json").read_bytes()
    runs = {"capped (pesto default)": {}, "glibc default": {"MALLOC_ARENA_MAX": str(8 * os.cpu_count())}}
    services = {name: make_service(name, env) for name, env in runs.items()}
    figures = {name: {"rss_mb": [], "walls_s": []} for name in runs}
    try:
        clients = {}
        for name, service in services.items():
            service.start()
            clients[name] = Client(service.port)
        for index in range(budget.large_requests):
            for name, service in services.items():
                wall, _ = clients[name].post(body)
                figures[name]["walls_s"].append(wall)
                figures[name]["rss_mb"].append(service.rss_mb())
                if index == 0:
                    figures[name]["single_peak_mb"] = vm_kib(service.process.pid, "VmHWM:") / 1024
        for name, service in services.items():
            figures[name]["peak_mb"] = vm_kib(service.process.pid, "VmHWM:") / 1024
            clients[name].close()
    finally:
        for service in services.values():
            service.stop()
    for row in figures.values():
        row["body_mb"] = len(body) / 1e6
        row["s_per_request"] = statistics.median(row["walls_s"])
    results.large.update(figures)
    results.large["size"] = budget.large_size


def measure_flood(service: "Service", images: Path, budget: Budget, results: Results) -> None:
    """Many large requests at once to one slot and a queue of 4: how many are answered, how
    soon the refusals come once the body is sent, and the peak RSS against one request's."""
    import threading

    body = (images / f"{budget.large_size}.json").read_bytes()
    head = (
        f"POST {PROCESS} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    service.start()
    try:
        client = Client(service.port)
        client.post(body)
        client.close()
        pid = service.process.pid
        single = vm_kib(pid, "VmHWM:") / 1024
        reset_peak(pid)
        answers: list[tuple[int, float]] = []

        def one() -> None:
            with socket.create_connection(("127.0.0.1", service.port), timeout=300) as sock:
                sock.sendall(head + body)
                sent = time.perf_counter()
                status = int(sock.makefile("rb").readline().split()[1])
                answers.append((status, time.perf_counter() - sent))

        threads = [threading.Thread(target=one) for _ in range(budget.flood_requests)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(600)
        peak = vm_kib(pid, "VmHWM:") / 1024
        healthy = health_status(service.port) == 200
    finally:
        service.stop()
    statuses: dict[int, int] = {}
    for status, _ in answers:
        statuses[status] = statuses.get(status, 0) + 1
    refusals = sorted(seconds for status, seconds in answers if status == 503)
    # The server's own access lines time a refusal from the body's arrival (the request is
    # complete) to the answer: the client's figure adds the body's transit through the sockets.
    arrival = sorted(
        float(line.rsplit(" ", 1)[1].removesuffix("ms")) / 1000
        for line in service.log.read_text().splitlines()
        if f"POST {PROCESS} 503 " in line
    )
    results.flood = {
        "requests": budget.flood_requests,
        "size": budget.large_size,
        "body_mb": len(body) / 1e6,
        "statuses": statuses,
        "refusal_s": refusals,
        "refusal_after_arrival_s": arrival,
        "single_peak_mb": single,
        "peak_mb": peak,
        "healthy_after": healthy,
    }


def measure_slow_clients(service: "Service", results: Results, stalled: int = 500, slow: int = 50) -> None:
    """Connections stalled in their headers and bodies sent a byte a second: what each costs
    (RSS), how soon a normal request is answered beside them, when the stalled ones are closed."""
    import threading

    service.start()
    sockets: list[socket.socket] = []
    stop = threading.Event()
    try:
        pid = service.process.pid
        client = Client(service.port)
        client.post(json.dumps(ECHO_BODY).encode())
        client.close()
        before = service.rss_mb()
        headers_begun = (
            f"POST {PROCESS} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n".encode()
        )
        for _ in range(stalled):
            sockets.append(socket.create_connection(("127.0.0.1", service.port), timeout=10))
            sockets[-1].sendall(headers_begun)
        slow_sockets = []
        for _ in range(slow):
            sock = socket.create_connection(("127.0.0.1", service.port), timeout=10)
            sock.sendall(headers_begun + b"Content-Length: 100000\r\n\r\n{")
            slow_sockets.append(sock)
        sockets += slow_sockets
        opened = time.perf_counter()

        def trickle() -> None:
            while not stop.wait(1.0):
                for sock in slow_sockets:
                    sock.send(b" ")

        threading.Thread(target=trickle, daemon=True).start()
        while (
            len(list(Path(f"/proc/{pid}/fd").iterdir())) < stalled + slow
            and time.perf_counter() - opened < 30
        ):
            time.sleep(0.05)
        during = service.rss_mb()
        latencies = []
        for _ in range(5):
            began = time.perf_counter()
            client = Client(service.port)
            client.post(json.dumps(ECHO_BODY).encode())
            client.close()
            latencies.append(time.perf_counter() - began)
        closed_after = None
        while time.perf_counter() - opened < 150:
            if all(_closed(sock) for sock in sockets[:stalled]):
                closed_after = time.perf_counter() - opened
                break
            time.sleep(0.25)
        slow_open = sum(not _closed(sock) for sock in slow_sockets)
    finally:
        stop.set()
        for sock in sockets:
            sock.close()
        service.stop()
    results.slow = {
        "stalled": stalled,
        "slow": slow,
        "rss_before_mb": before,
        "rss_during_mb": during,
        "kib_per_connection": (during - before) * 1024 / (stalled + slow),
        "answer_s": latencies,
        "stalled_closed_after_s": closed_after,
        "slow_still_open": slow_open,
    }


def _closed(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


# ---------------------------------------------------------------- report


def report(results: Results, budget: Budget) -> str:
    lines = [f"versions: {json.dumps(results.versions)}", ""]
    if results.noop:
        lines += noop_table(results, budget)
    if results.images:
        lines += images_table(results)
    if results.concurrency:
        lines += concurrency_table(results, budget)
    if results.footprint:
        lines += footprint_table(results)
    if results.large:
        lines += large_table(results)
    if results.flood:
        lines += flood_table(results)
    if results.slow:
        lines += slow_table(results)
    lines += ["", "Goals (ratios from this run)", "", "| goal | measured | met |", "| --- | --- | --- |"]
    lines += [f"| {goal} | {measured} | {'yes' if met else 'NO'} |" for goal, measured, met in goals(results)]
    return "\n".join(lines)


def noop_table(results: Results, budget: Budget) -> list[str]:
    lines = [
        f"No-op JSON (`{json.dumps(ECHO_BODY)}` echoed), wrk (one thread), closed loop, "
        f"{budget.noop_rounds} interleaved {budget.noop_seconds:g} s rounds: best, median and worst "
        "round (server CPU: the lowest round's)",
        "",
        "| service | connections | 2xx req/s best | median | worst | p50 ms | p99 ms | server CPU µs per answer | "
        "429 | 5xx | other non-2xx |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in results.noop.values():
        lines.append(
            f"| {row['service']} | {row['connections']} | {row['ok_per_s']:,.0f} | "
            f"{row['median_ok_per_s']:,.0f} | {row['min_ok_per_s']:,.0f} | "
            f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['cpu_us']:,.0f} | {row['429']} | "
            f"{row['5xx']} | {row['other_non_2xx'] + row['socket_errors']} |"
        )
    return lines


def images_table(results: Results) -> list[str]:
    lines = []
    lines += [
        "",
        "Image in, same image out (RGB PNG as base64 in JSON), one client, n rounds interleaving "
        "pesto-serve, the original and the floor; per image: req/s over all, median and best wall "
        "time, median CPU time (the server's; the floor's own); ratios of best times (of CPU)",
        "",
        "| size | n | pesto-serve req/s | p50 s | best s | CPU s | original req/s | p50 s | best s | "
        "CPU s | floor (no HTTP) p50 s | best s | CPU s | pesto-serve / floor | original / pesto-serve |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size in IMAGE_SIZES:
        pesto, original, floor = (results.images[f"{n}|{size}"] for n in ("pesto-serve", "original", "floor"))
        cells = [f"{size}²", str(pesto["n"])]
        for row in (pesto, original):
            cells += [
                f"{row['per_s']:.2f}",
                f"{row['p50_s']:.3f}",
                f"{row['best_s']:.3f}",
                f"{row['cpu_s']:.3f}",
            ]
        cells += [f"{floor['p50_s']:.3f}", f"{floor['best_s']:.3f}", f"{floor['cpu_s']:.3f}"]
        for slow, fast in ((pesto, floor), (original, pesto)):
            cells.append(f"{slow['best_s'] / fast['best_s']:.2f} x ({slow['cpu_s'] / fast['cpu_s']:.2f} x)")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def concurrency_table(results: Results, budget: Budget) -> list[str]:
    lines = []
    lines += [
        "",
        f"Concurrency: process() waits 50 ms without the GIL, 8 connections, {budget.sleep_seconds:g} s",
        "",
        "| service | slots | 2xx req/s | p50 ms | p99 ms | non-2xx |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in results.concurrency.values():
        lines.append(
            f"| {row['service']} | {row['slots']} | {row['ok_per_s']:.1f} | {row['p50_ms']:.1f} | "
            f"{row['p99_ms']:.1f} | {row['non_2xx']} |"
        )
    return lines


def footprint_table(results: Results) -> list[str]:
    lines = []
    lines += [
        "",
        f"Footprint on the no-op project: start to first 200 on {HEALTH} (median and best of {STARTS}), "
        f"resident memory (VmRSS)",
        "",
        "| service | start s | best s | CPU s at first 200 | RSS at start MB | after N requests | "
        "after N more | N |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in results.footprint.items():
        start, first, second = row["rss_mb"]
        lines.append(
            f"| {name} | {row['start_s']:.3f} | {row['start_best_s']:.3f} | {row['start_cpu_s']:.2f} | {start:.1f} | "
            f"{first:.1f} | {second:.1f} | {' + '.join(f'{n:,}' for n in row['requests'])} |"
        )
    return lines


def large_table(results: Results) -> list[str]:
    size = results.large["size"]
    rows = {name: row for name, row in results.large.items() if name != "size"}
    body = next(iter(rows.values()))["body_mb"]
    lines = [
        "",
        f"Large images: {size}x{size} RGB PNGs ({body:.1f} MB of JSON each) echoed one after another "
        "by a one-slot service, the two runs interleaved request by request; RSS (MB) after each request",
        "",
        "| malloc arenas | s per request (median) | peak for one request MB | peak MB | RSS after each request MB |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['s_per_request']:.2f} | {row['single_peak_mb']:.0f} | {row['peak_mb']:.0f} | "
            f"{', '.join(f'{mb:.0f}' for mb in row['rss_mb'])} |"
        )
    return lines


def flood_table(results: Results) -> list[str]:
    row = results.flood
    refusals = row["refusal_s"]
    return [
        "",
        f"Flood: {row['requests']} concurrent {row['size']}² requests ({row['body_mb']:.1f} MB each) to "
        "the image echo with 1 slot and a queue of 4",
        "",
        "| statuses | refusals: s after the body arrived (server) | s after the client sent it (min / median / max) "
        "| peak for one request MB | flood peak MB | healthy after |",
        "| --- | --- | --- | ---: | ---: | --- |",
        f"| {json.dumps(row['statuses'])} | {max(row['refusal_after_arrival_s'], default=0):.3f} at most | "
        + (
            f"{refusals[0]:.2f} / {statistics.median(refusals):.2f} / {refusals[-1]:.2f}"
            if refusals
            else "none"
        )
        + f" | {row['single_peak_mb']:.0f} | {row['peak_mb']:.0f} ({row['peak_mb'] / row['single_peak_mb']:.1f} x) | "
        f"{'yes' if row['healthy_after'] else 'NO'} |",
    ]


def slow_table(results: Results) -> list[str]:
    row = results.slow
    closed = row["stalled_closed_after_s"]
    return [
        "",
        f"Slow clients on the no-op project: {row['stalled']} connections stalled in their headers and "
        f"{row['slow']} sending their body a byte a second",
        "",
        "| RSS before MB | with them MB | KiB per connection | a normal request beside them s (max of 5) | "
        "stalled ones closed after s | slow bodies still open |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {row['rss_before_mb']:.1f} | {row['rss_during_mb']:.1f} | {row['kib_per_connection']:.1f} | "
        f"{max(row['answer_s']):.3f} | {'not within 150 s' if closed is None else f'{closed:.1f}'} | "
        f"{row['slow_still_open']} of {row['slow']} |",
    ]


def goals(results: Results) -> list[tuple[str, str, bool]]:
    checks = []
    if results.noop and results.images and results.concurrency and results.footprint:
        checks += classic_goals(results)
    if results.large:
        capped, default = results.large["capped (pesto default)"], results.large["glibc default"]
        rss = capped["rss_mb"]
        checks.append(
            (
                f"{len(rss)} large images one after another: RSS at the end ≤ 2 x after the first 2",
                f"{rss[-1]:.0f} MB against {rss[1]:.0f} MB ({rss[-1] / rss[1]:.2f} x; glibc's default "
                f"arenas: {default['rss_mb'][-1]:.0f} MB)",
                rss[-1] <= 2 * rss[1],
            )
        )
        speed = capped["s_per_request"] / default["s_per_request"]
        checks.append(
            (
                "large images: the arena cap at the same speed (within 5%)",
                f"{speed:.3f} x glibc default's time per request",
                speed <= 1.05,
            )
        )
    if results.flood:
        row = results.flood
        ratio = row["peak_mb"] / row["single_peak_mb"]
        checks.append(("flood: peak < 4 x one request's peak", f"{ratio:.2f} x", ratio < 4))
        late = max(row["refusal_after_arrival_s"], default=0.0)
        checks.append(
            (
                "flood: refusals within 1 s of the body's arrival",
                f"{late:.3f} s at most (the client saw {max(row['refusal_s'], default=0.0):.2f} s "
                "after sending, the body's transit included)",
                late <= 1.0,
            )
        )
    if results.slow:
        row = results.slow
        checks.append(
            (
                f"slow clients: a normal request within 1 s beside {row['stalled']} stalled and {row['slow']} slow",
                f"{max(row['answer_s']):.3f} s at most",
                max(row["answer_s"]) <= 1.0,
            )
        )
        closed = row["stalled_closed_after_s"]
        checks.append(
            (
                "slow clients: stalled headers closed after PESTO_HEADER_TIMEOUT (10 s)",
                "not within 150 s" if closed is None else f"all within {closed:.1f} s",
                closed is not None and closed < 20,
            )
        )
    return checks


def classic_goals(results: Results) -> list[tuple[str, str, bool]]:
    noop, images, footprint = results.noop, results.images, results.footprint
    checks = []
    for c in (1, 8):
        pesto, bare = noop[f"pesto-serve|{c}"], noop[f"bare bottle+waitress|{c}"]
        ratio = pesto["ok_per_s"] / bare["ok_per_s"]
        median = pesto["median_ok_per_s"] / bare["median_ok_per_s"]
        by_cpu = bare["cpu_us"] / pesto["cpu_us"]
        checks.append(
            (
                f"no-op c={c}: ≥ 0.9 x bare stack's req/s (best rounds)",
                f"{ratio:.2f} x (medians: {median:.2f} x; by CPU per answer: {by_cpu:.2f} x)",
                ratio >= 0.9,
            )
        )
    c1 = noop["pesto-serve|1"]["ok_per_s"] / noop["original|1"]["ok_per_s"]
    checks.append(("no-op c=1: about 10 x the original", f"{c1:.1f} x", c1 >= 10))
    refused = noop["pesto-serve|8"]["429"] + noop["pesto-serve|8"]["5xx"]
    checks.append(("no-op c=8: no 429, no 5xx", f"{refused} refused", refused == 0))
    pesto, floor = images["pesto-serve|1024"], images["floor|1024"]
    ratio = pesto["best_s"] / floor["best_s"]
    checks.append(
        (
            "image 1024²: ≤ 1.1 x the floor's time per image (best)",
            f"{ratio:.2f} x (p50: {pesto['p50_s'] / floor['p50_s']:.2f} x, "
            f"CPU: {pesto['cpu_s'] / floor['cpu_s']:.2f} x)",
            ratio <= 1.1,
        )
    )
    for size in IMAGE_SIZES:
        original, pesto = images[f"original|{size}"], images[f"pesto-serve|{size}"]
        ratio = original["best_s"] / pesto["best_s"]
        checks.append(
            (
                f"image {size}²: faster than the original (best)",
                f"{ratio:.2f} x (p50: {original['p50_s'] / pesto['p50_s']:.2f} x, "
                f"CPU: {original['cpu_s'] / pesto['cpu_s']:.2f} x)",
                ratio > 1,
            )
        )
    one, four = (results.concurrency[f"pesto-serve {n} slot{'s' * (n > 1)}"]["ok_per_s"] for n in (1, 4))
    checks.append(("4 slots ≥ 3.5 x 1 slot", f"{four / one:.2f} x", four / one >= 3.5))
    pesto = footprint["pesto-serve"]
    original = footprint["original"]
    bare = footprint["bare bottle+waitress"]
    checks.append(
        (
            "start ≤ 2 x the bare app's to first 200 (best)",
            f"{pesto['start_best_s']:.3f} s against {bare['start_best_s']:.3f} s "
            f"({pesto['start_best_s'] / bare['start_best_s']:.2f} x; median {pesto['start_s']:.3f} s, CPU "
            f"{pesto['start_cpu_s']:.2f} s; original {original['start_best_s']:.3f} s)",
            pesto["start_best_s"] <= 2 * bare["start_best_s"],
        )
    )
    start, first, second = pesto["rss_mb"]
    checks.append(("RSS < 60 MB", f"{max(pesto['rss_mb']):.1f} MB at most", max(pesto["rss_mb"]) < 60))
    first_count = pesto["requests"][0]
    checks.append(
        (
            f"no RSS growth after {first_count:,} requests (≤ 1 MB more after as many again)",
            f"{second - first:+.1f} MB ({first - start:+.1f} MB over the first {first_count:,})",
            second - first <= 1,
        )
    )
    return checks


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, to check the bench itself")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument(
        "--only",
        type=lambda text: set(text.split(",")),
        default=set(PARTS),
        help=f"run only these parts, comma-separated (default: all of {','.join(PARTS)})",
    )
    args = parser.parse_args()
    if args.only - set(PARTS):
        sys.exit(
            f"--only: unknown part(s) {', '.join(sorted(args.only - set(PARTS)))}; known: {', '.join(PARTS)}"
        )
    budget = Budget().quick() if args.quick else Budget()
    began = time.perf_counter()

    wrk = ensure_wrk()
    CACHE.mkdir(parents=True, exist_ok=True)
    pesto_python = install_toolkit()
    original_python = ensure_venv("original", ORIGINAL_REQUIREMENTS)
    shutil.rmtree(RUN, ignore_errors=True)
    RUN.mkdir(parents=True)
    results = Results(versions=versions(pesto_python, original_python, wrk))
    load_start = load_average()

    images = RUN / "images"
    sizes = sorted({*IMAGE_SIZES, budget.large_size})
    subprocess.run([pesto_python, HERE / "images.py", "make", images, *map(str, sizes)], check=True)
    echo_body = RUN / "echo.json"
    echo_body.write_text(json.dumps(ECHO_BODY))
    sleep_body = RUN / "sleep.json"
    sleep_body.write_text(json.dumps({"text": "hello, pesto"}))

    def pesto_serve(
        project: str, slots: int = 1, name: str = "pesto-serve", env: dict | None = None
    ) -> Service:
        return Service(
            name,
            [
                pesto_python.parent / "pesto-serve",
                PROJECTS / project,
                "--host",
                "127.0.0.1",
                "--slots",
                slots,
            ],
            env,
            ready=READY,
        )

    def original(project: str) -> Service:
        config = RUN / "original-config" / project
        subprocess.run(
            [original_python, HERE / "original_service.py", "prepare", PROJECTS / project, config],
            check=True,
            capture_output=True,
        )
        return Service(
            "original", [original_python, HERE / "original_service.py", "serve", PROJECTS / project, config]
        )

    if "large" in args.only:
        print("large images ...", flush=True)
        measure_large_images(
            lambda name, env: pesto_serve("image", 1, f"large {name}", env), images, budget, results
        )
    if "flood" in args.only:
        print("flood ...", flush=True)
        measure_flood(pesto_serve("image", 1, "flood", {"PESTO_QUEUE_SIZE": "4"}), images, budget, results)
    if "slow" in args.only:
        print("slow clients ...", flush=True)
        measure_slow_clients(pesto_serve("echo", 1, "slow clients"), results)
    if "noop" in args.only:
        bare = Service("bare bottle+waitress", [pesto_python, HERE / "bare_echo.py", "--threads", 4])
        noop_services = [pesto_serve("echo"), bare, original("echo")]
        try:
            print("footprint and memory ...", flush=True)
            measure_footprint(noop_services, echo_body.read_bytes(), budget, results)
            print("no-op JSON ...", flush=True)
            measure_noop(wrk, noop_services, echo_body, budget, results)
        finally:
            for service in noop_services:
                service.stop()

    if "images" in args.only:
        print("images ...", flush=True)
        image_services = [pesto_serve("image"), original("image")]
        try:
            for service in image_services:
                service.start()
            measure_images(image_services, pesto_python, images, budget, results)
        finally:
            for service in image_services:
                service.stop()

    if "concurrency" in args.only:
        print("concurrency ...", flush=True)
        sleepers = [
            (pesto_serve("sleep", 1, "pesto-serve 1 slot"), 1),
            (pesto_serve("sleep", 4, "pesto-serve 4 slots"), 4),
            (original("sleep"), 1),
        ]
        try:
            measure_concurrency(wrk, sleepers, sleep_body, budget, results)
        finally:
            for service, _ in sleepers:
                service.stop()

    results.versions["load average at start, end"] = f"{load_start} / {load_average()}"
    text = report(results, budget)
    print()
    print(text)
    print(f"\n(the whole run took {time.perf_counter() - began:.0f} s; logs in {RUN / 'logs'})")
    if args.json:
        args.json.write_text(json.dumps(results.__dict__, indent=2, default=str))


def load_average() -> str:
    """The 1-minute load average and the core count: how busy the machine was."""
    return f"{Path('/proc/loadavg').read_text().split()[0]} on {os.cpu_count()} cores"


def versions(pesto_python: Path, original_python: Path, wrk: str) -> dict:
    def pip_version(python: Path, package: str) -> str:
        result = subprocess.run([python, "-m", "pip", "show", package], capture_output=True, text=True)
        return next(
            (text.split()[1] for text in result.stdout.splitlines() if text.startswith("Version:")), "?"
        )

    wrk_line = subprocess.run([wrk, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    commit = subprocess.run(
        ["git", "-C", REPO, "describe", "--always", "--dirty"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "repository": commit or "?",
        "python": sys.version.split()[0],
        "waitress": pip_version(pesto_python, "waitress"),
        "bottle": pip_version(pesto_python, "bottle"),
        "pillow": pip_version(pesto_python, "pillow"),
        "processing-factory": pip_version(original_python, "processing-factory"),
        "uvicorn": pip_version(original_python, "uvicorn"),
        "fastapi": pip_version(original_python, "fastapi"),
        "rasterio": pip_version(original_python, "rasterio"),
        "wrk": wrk_line.split()[1] if wrk_line else "?",
    }


if __name__ == "__main__":
    main()
