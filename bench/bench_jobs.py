#!/usr/bin/env python3
"""Stateful jobs: the Redis backend's cost against the folder's, its scaling, its memory.

    python bench/bench_jobs.py [--jobs N] [--quick]

With the toolkit's Python (`. scripts/bootstrap`) and Debian's redis-server. It prints:
- per-job overhead: `pesto-serve` on the no-op `tests/projects/jobs` project (one slot), one
  job at a time, POST to DONE (the client polls the status over a keep-alive connection every
  0.5 ms), p50 and p90, on the folder backend (`PESTO_JOBS_DIR`, fsync'ed files) and on Redis
  (`PESTO_JOBS_URL`); and the POST (202) alone;
- throughput through 1, 2 and 4 replicas on one Redis, one slot each, with a process() that
  sleeps 50 ms (the GIL released): jobs/s over the middle of a run of N jobs submitted at once
  (from the 15% to the 85% DONE mark, so that start and tail do not count), and the ratio to
  one replica;
- Redis memory for 20 jobs with a 16 MB result each: `used_memory` before and after, per job;
  then again with the results on a volume (`PESTO_JOBS_RESULTS_DIR`).

Redis runs with its own data folder (append-only file, `appendfsync everysec`, the default)
on a free 127.0.0.1 port; every server is stopped by the script.
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import redis
import requests

REPO = Path(__file__).resolve().parent.parent
PROJECT = REPO / "tests" / "projects" / "jobs"
PESTO_SERVE = Path(sys.executable).parent / "pesto-serve"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def redis_server(parent: Path):
    folder = Path(tempfile.mkdtemp(prefix="redis-", dir=parent))  # a fresh data folder each time
    port = free_port()
    with open(folder / "redis.log", "wb") as log:
        process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(folder),
                "--appendonly",
                "yes",
                "--save",
                "",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield url, client
    finally:
        client.close()
        process.terminate()
        process.wait(20)


@contextmanager
def replica(folder: Path, env: dict):
    port = free_port()
    log = open(folder / f"replica-{port}.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [str(PESTO_SERVE), str(PROJECT), "--port", str(port), "--slots", "1"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **env},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(url + "/api/v1/ready", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the replica did not start: {folder}")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(20)
        log.close()


def submit_to_done(url: str, count: int) -> tuple[list[float], list[float]]:
    """Seconds from POST to DONE, and of the POST alone, for `count` jobs one at a time."""
    session = requests.Session()
    done, posted = [], []
    for n in range(count):
        started = time.perf_counter()
        answer = session.post(url + "/api/v1/process", json={"tag": f"j{n}"})
        posted.append(time.perf_counter() - started)
        job_id = answer.json()["jobId"]
        while session.get(f"{url}/api/v1/jobs/{job_id}/status").json()["status"] != "DONE":
            time.sleep(0.0005)
        done.append(time.perf_counter() - started)
    return done, posted


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def overhead(folder: Path, count: int) -> None:
    print(f"\n## Per-job overhead: no-op process(), one job at a time, {count} jobs")
    results = {}
    with redis_server(folder) as (url, _):
        for name, env in (
            ("folder", {"PESTO_JOBS_DIR": str(folder / "jobs")}),
            ("redis", {"PESTO_JOBS_URL": url}),
        ):
            with replica(folder, env) as service:
                submit_to_done(service, 20)  # warm up
                results[name] = submit_to_done(service, count)
    for name, (done, posted) in results.items():
        print(
            f"{name:7s} POST→DONE p50 {percentile(done, 0.5) * 1000:6.2f} ms  "
            f"p90 {percentile(done, 0.9) * 1000:6.2f} ms   POST alone p50 "
            f"{percentile(posted, 0.5) * 1000:6.2f} ms"
        )
    difference = percentile(results["redis"][0], 0.5) - percentile(results["folder"][0], 0.5)
    print(f"redis - folder, p50 POST→DONE: {difference * 1000:+.2f} ms (goal: at most +2 ms)")


def throughput(folder: Path, count: int) -> None:
    print(f"\n## Throughput: {count} jobs of a 50 ms sleep, 1 slot per replica, one Redis")
    rates = {}
    for replicas in (1, 2, 4):
        rates[replicas] = jobs_per_second(folder, replicas, count)
        print(
            f"{replicas} replica(s): {rates[replicas]:6.1f} jobs/s  "
            f"({rates[replicas] / rates[1]:.2f} x one replica; ideal {20 * replicas} jobs/s)"
        )


def jobs_per_second(folder: Path, replicas: int, count: int) -> float:
    """Jobs DONE per second between the 15% and the 85% marks of `count` jobs."""
    with redis_server(folder) as (url, client), ExitStack() as stack:
        env = {"PESTO_JOBS_URL": url, "PESTO_QUEUE_SIZE": str(count + 10)}
        urls = [stack.enter_context(replica(folder, env)) for _ in range(replicas)]
        marks = {}
        low, high = int(count * 0.15), int(count * 0.85)

        def watch():
            while True:
                done = int(client.hget("pesto:counts", "DONE") or 0)
                moment = time.perf_counter()
                if done >= low and "low" not in marks:
                    marks["low"] = (moment, done)
                if done >= high:
                    marks["high"] = (moment, done)
                    return
                time.sleep(0.005)

        def post(n):
            body = {"tag": f"t{n}", "seconds": 0.05}
            return requests.post(
                urls[n % len(urls)] + "/api/v1/process", json=body, headers={"Connection": "close"}
            ).status_code

        watcher = threading.Thread(target=watch)
        watcher.start()
        with ThreadPoolExecutor(8) as pool:
            statuses = set(pool.map(post, range(count)))
        assert statuses == {202}, statuses
        watcher.join(600)
        (t1, c1), (t2, c2) = marks["low"], marks["high"]
        return (c2 - c1) / (t2 - t1)


def memory(folder: Path, volume: Path | None = None) -> None:
    size = 16 * 1024 * 1024
    where = f", results over 1 MiB on {volume} (PESTO_JOBS_RESULTS_DIR)" if volume else ""
    print(f"\n## Redis memory: 20 jobs with a 16 MB result each{where}")
    with redis_server(folder) as (url, client):
        env = {"PESTO_JOBS_URL": url, "PESTO_MAX_BODY_BYTES": str(64 * 1024 * 1024)}
        if volume:
            env["PESTO_JOBS_RESULTS_DIR"] = str(volume)
        with replica(folder, env) as service:
            before = client.info("memory")["used_memory"]
            started = time.perf_counter()
            ids = [
                requests.post(service + "/api/v1/process", json={"tag": f"m{n}", "size": size}).json()[
                    "jobId"
                ]
                for n in range(20)
            ]
            while int(client.hget("pesto:counts", "DONE") or 0) < 20:
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
            info = client.info("memory")
            fetched = time.perf_counter()
            body = requests.get(f"{service}/api/v1/jobs/{ids[0]}/results/result").content
            fetch_ms = (time.perf_counter() - fetched) * 1000
            assert len(body) == size
    used = info["used_memory"] - before
    print(
        f"used_memory: {before / 2**20:.1f} MiB before, {info['used_memory'] / 2**20:.1f} MiB "
        f"after (+{used / 2**20:.1f} MiB, {used / 20 / 2**20:.2f} MiB per job of "
        f"{size / 2**20:.0f} MiB); peak {info['used_memory_peak'] / 2**20:.1f} MiB; "
        f"RSS {info['used_memory_rss'] / 2**20:.1f} MiB"
    )
    print(f"20 jobs DONE in {elapsed:.2f} s; one 16 MB result read back in {fetch_ms:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=300, help="jobs per measurement")
    parser.add_argument("--quick", action="store_true", help="fewer jobs: checks the bench")
    args = parser.parse_args()
    count = 60 if args.quick else args.jobs
    print(
        f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
        f"(1, 5, 15 min), {os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as folder:
        overhead(Path(folder), count)
        throughput(Path(folder), max(count, 200) if not args.quick else 120)
        memory(Path(folder))
        memory(Path(folder), Path(folder) / "results")
    print(f"\nload after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
