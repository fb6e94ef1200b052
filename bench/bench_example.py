#!/usr/bin/env python3
"""The example classifier's image: what the service costs over calling `Process.process()`.

    python bench/bench_example.py [--image image-classifier:1.0.0] [--threads 1] [--seconds 10]

Run it with a Python that has the toolkit and the example's requirements
(`pip install -e '.[all]' -r example_project/requirements.txt`), a container engine and the
image (`pesto-pack build example_project`). It prints the tables that BENCHMARKS.md holds:

- latency (p50, p99) and requests/s at concurrency 1 and 4, closed loop, over the 11 test
  folders' photos in turn, for:
  - `process()`: `Process.process()` alone, on the photo already decoded;
  - `decode + process()`: the photo's base64 decoded by the service's own Image type, then
    `process()`: the work the service cannot skip;
  - `HTTP`: `POST /api/v1/process` to the image's container on 127.0.0.1 (keep-alive
    connections, one per client thread, bodies serialised beforehand).
  At concurrency 4, four threads decode at once and `process()` runs one at a time, as in
  the service with its default single slot (the example's Process is not declared
  thread-safe). Both sides get the same torch threads (`--threads`: OMP_NUM_THREADS in the
  container, `torch.set_num_threads` here). Rounds interleave the three and are repeated;
  each cell keeps its best round, so a burst of load from elsewhere does not hit one side only.
- CPU time per answer: this interpreter's (user + system) for the direct calls, the service
  process's in the container (from /proc) for HTTP, the client's excluded. Other load on
  the machine barely changes it, where it can halve requests/s or double latency;
- the overhead: HTTP against `decode + process()` (p50, requests/s and CPU per answer);
- the image's size, and its base image's;
- start to ready: from `docker run` (the SDK's) to the first 200 on `/api/v1/ready`, which
  answers once `on_start()` (class index, weights, one warm-up pass) is done.

Every container publishes on 127.0.0.1 only and is removed, also on failure.
"""

import argparse
import http.client
import json
import os
import statistics
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_runtime import CLOCK_TICKS, cpu_ticks  # noqa: E402  (the runtime bench's /proc reader)

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "example_project"
RESOURCES = EXAMPLE / "pesto" / "tests" / "resources"
CHECKPOINT = EXAMPLE / "checkpoint" / "checkpoint.tar.gz"
IMAGE = "image-classifier:1.0.0"
CONCURRENCY = (1, 4)


@dataclass
class Cell:
    """One measurement: latencies of the answers in a closed loop of `seconds`, and the CPU
    seconds the side measured used meanwhile."""

    latencies: list[float]
    seconds: float
    cpu_seconds: float

    @property
    def cpu_per_answer(self) -> float:
        return self.cpu_seconds / len(self.latencies)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def closed_loop(clients: int, seconds: float, call, cpu) -> Cell:
    """`clients` threads each calling `call(client, made)` (`made` counts the calls of all
    clients, so the photos go in turn) until `seconds` pass; `cpu()` reads CPU seconds."""
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    errors: list[BaseException] = []

    def client(number: int) -> None:
        made = number
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                call(number, made)
                with lock:
                    latencies.append(time.perf_counter() - started)
                made += clients
        except BaseException as error:  # reported in the main thread
            errors.append(error)

    started, cpu_before = time.perf_counter(), cpu()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return Cell(latencies, time.perf_counter() - started, cpu() - cpu_before)


class Direct:
    """The example's Process in this interpreter, with the service's decoder and one slot."""

    def __init__(self, threads: int, weights: Path):
        os.environ["OMP_NUM_THREADS"] = str(threads)  # before torch is imported
        os.environ["TORCH_HOME"] = str(weights)
        os.environ["PESTO_CONFIG_DIR"] = str(EXAMPLE / "pesto" / "api")
        sys.path.insert(0, str(EXAMPLE))
        import torch
        from algorithm.input_output import Input
        from algorithm.process import Process

        from pesto_pack.plugins import default_registry
        from pesto_pack.types.base import DecodeSettings

        torch.set_num_threads(threads)
        Process.on_start()
        self.process_one = lambda image: Process.process(Input(image=image))
        image_type = default_registry().types["Image"]
        settings = DecodeSettings()
        self.decode = lambda value: image_type.decode(value, settings)
        self.slot = threading.Lock()

    @staticmethod
    def cpu() -> float:
        return sum(os.times()[:2])

    def process_only(self, decoded: list):
        def call(_client: int, made: int) -> None:
            with self.slot:
                self.process_one(decoded[made % len(decoded)])

        return call

    def decode_and_process(self, values: list[str]):
        def call(_client: int, made: int) -> None:
            image = self.decode(values[made % len(values)])
            with self.slot:
                self.process_one(image)

        return call


class Http:
    """Keep-alive POSTs of prepared bodies, one connection per client thread."""

    def __init__(self, url: str, pid: int, bodies: list[bytes], expected: list[dict]):
        self.pid = pid
        host, port = url.removeprefix("http://").split(":")
        self.address = (host, int(port))
        self.bodies = bodies
        self.expected = expected
        self.connections: dict[int, http.client.HTTPConnection] = {}

    def call(self, client: int, made: int) -> None:
        connection = self.connections.get(client)
        if connection is None:
            connection = self.connections[client] = http.client.HTTPConnection(*self.address, timeout=120)
        index = made % len(self.bodies)
        connection.request(
            "POST", "/api/v1/process", self.bodies[index], {"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        body = response.read()
        if response.status != 200 or json.loads(body) != self.expected[index]:
            raise RuntimeError(f"POST /api/v1/process answered {response.status}: {body[:300]!r}")

    def cpu(self) -> float:
        """The service process's CPU seconds (all its threads), as the host sees it."""
        return cpu_ticks(self.pid) / CLOCK_TICKS

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()
        self.connections.clear()


def test_photos() -> tuple[list[str], list[dict]]:
    """Each test folder's request value (base64) and expected answer, in folder order."""
    from pesto_pack.plugins import default_registry
    from pytest_pesto.payload import read_folder

    registry = default_registry()
    folders = sorted(RESOURCES.glob("test_*"), key=lambda folder: int(folder.name.split("_")[1]))
    values = [read_folder(folder / "input", registry)["image"] for folder in folders]
    answers = [read_folder(folder / "output", registry) for folder in folders]
    return values, answers


def ensure_image(engine, tag: str) -> None:
    from pesto_pack.build.engine_images import image_id

    if image_id(engine, tag) is None:
        sys.exit(
            f"{tag} is not in the engine: build it first (`python "
            "example_project/scripts/make_checkpoint.py && pesto-pack build example_project`)"
        )


def start_times(tag: str, starts: int, threads: int) -> list[float]:
    from pesto_pack import containers

    times = []
    for _ in range(starts):
        started = time.perf_counter()
        service = containers.start(tag, start_timeout=300, environment={"OMP_NUM_THREADS": str(threads)})
        times.append(time.perf_counter() - started)
        service.remove()
    return times


def image_size(engine, tag: str) -> int:
    return engine.images.get(tag).attrs["Size"]


def row(name: str, clients: int, cell: Cell) -> str:
    return (
        f"| {name} | {clients} | {1000 * cell.percentile(50):.0f} | {1000 * cell.percentile(99):.0f} "
        f"| {cell.rate:.1f} | {1000 * cell.cpu_per_answer:.0f} | {len(cell.latencies)} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=IMAGE)
    parser.add_argument("--base-image", default=os.environ.get("PESTO_BASE_IMAGE", "pesto-base:bookworm"))
    parser.add_argument("--threads", type=int, default=1, help="torch threads on both sides (default 1)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of one cell's round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every cell; the best is kept")
    parser.add_argument("--starts", type=int, default=3, help="container starts timed")
    args = parser.parse_args()

    from pesto_pack import containers
    from pesto_pack.engine import connect

    engine = connect()
    ensure_image(engine, args.image)
    values, answers = test_photos()
    bodies = [json.dumps({"image": value}).encode() for value in values]
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="bench-example-") as weights:
        with tarfile.open(CHECKPOINT) as archive:  # the image's resource, unpacked as the build does
            archive.extractall(Path(weights) / "checkpoints", filter="data")
        direct = Direct(args.threads, Path(weights))
    decoded = [direct.decode(value) for value in values]
    for image, answer in zip(decoded, answers, strict=True):
        assert direct.process_one(image).category == answer["category"], answer

    best: dict[tuple[str, int], Cell] = {}

    def keep(key: tuple[str, int], cell: Cell) -> None:
        if key not in best or cell.rate > best[key].rate:
            best[key] = cell

    service = containers.start(
        args.image, start_timeout=300, environment={"OMP_NUM_THREADS": str(args.threads)}
    )
    try:
        pid = engine.containers.get(service.name).attrs["State"]["Pid"]
        client = Http(service.url, pid, bodies, answers)
        closed_loop(1, 2.0, client.call, client.cpu)  # warm-up of both sides
        closed_loop(1, 2.0, direct.decode_and_process(values), direct.cpu)
        for round_number in range(args.rounds):
            for clients in CONCURRENCY:
                print(f"round {round_number + 1}/{args.rounds}, concurrency {clients}", file=sys.stderr)
                for name, call, cpu in (
                    ("process()", direct.process_only(decoded), direct.cpu),
                    ("decode + process()", direct.decode_and_process(values), direct.cpu),
                    ("HTTP", client.call, client.cpu),
                ):
                    keep((name, clients), closed_loop(clients, args.seconds, call, cpu))
                client.close()
    finally:
        service.remove()

    starts = start_times(args.image, args.starts, args.threads)
    size, base_size = image_size(engine, args.image), image_size(engine, args.base_image)
    load_after = os.getloadavg()

    print(
        f"\n{args.image}: {len(values)} test photos in turn, torch threads {args.threads} on both sides, "
        f"{args.rounds} x {args.seconds:g} s per cell (best kept); load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after, {os.cpu_count()} CPUs\n"
    )
    print("| what | concurrency | p50 ms | p99 ms | requests/s | CPU ms/answer | answers |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for clients in CONCURRENCY:
        for name in ("process()", "decode + process()", "HTTP"):
            print(row(name, clients, best[(name, clients)]))
    print("\n| overhead of HTTP over decode + process() | p50 | requests/s | CPU per answer |")
    print("| --- | --- | --- | --- |")
    for clients in CONCURRENCY:
        http_cell, direct_cell = best[("HTTP", clients)], best[("decode + process()", clients)]
        print(
            f"| concurrency {clients} | {http_cell.percentile(50) / direct_cell.percentile(50):.2f}x "
            f"| {direct_cell.rate / http_cell.rate:.2f}x "
            f"| {http_cell.cpu_per_answer / direct_cell.cpu_per_answer:.2f}x |"
        )
    print("\n| image | size |\n| --- | --- |")
    print(f"| {args.image} | {size / 1e9:.2f} GB ({size / 2**30:.2f} GiB) |")
    print(f"| {args.base_image} (its base) | {base_size / 1e6:.0f} MB |")
    print(
        f"\nstart to ready ({args.starts} starts): median {statistics.median(starts):.1f} s, "
        f"min {min(starts):.1f} s, max {max(starts):.1f} s "
        "(containers.start polls /api/v1/ready with a backoff of up to 0.5 s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
