#!/usr/bin/env python3
"""The try-it page's cost: its size, the service's start time with and without it, its load time.

    python bench/bench_page.py [--starts N] [--project DIR] [--no-browser]

With the toolkit's Python (`. scripts/bootstrap`). It prints:
- the page's files as they are sent (waitress sends them as they are, no compression) and,
  for reference, gzipped;
- what the page adds to a start, in-process: importing its module and mounting it;
- `pesto-serve PROJECT` from the command to its first 200 on /api/v1/ready, PESTO_PAGE=1 and
  PESTO_PAGE=0 taking turns (N starts each; median and spread), and the ratio of the medians;
- GET / and its files over loopback (median of 50), and, when Debian's chromium and
  chromedriver are there, a headless Chromium's time from navigation to the form shown.

Every server listens on 127.0.0.1 on a free port and is stopped by the script.
"""

import argparse
import gzip
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "pesto_serve" / "page"
PESTO_SERVE = Path(sys.executable).parent / "pesto-serve"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
PAGE_PATHS = ("/", "/page/page.js", "/page/page.css", "/page/fields.json")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str) -> bytes:
    with NO_PROXY.open(url, timeout=10) as answer:
        return answer.read()


def start(project: Path, page: bool) -> tuple[subprocess.Popen, str, float]:
    """A service, its URL, and the seconds from the command to its first ready 200."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PESTO_PAGE": "1" if page else "0"}
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(PESTO_SERVE), str(project), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    while True:
        try:
            get(url + "/api/v1/ready")
            return process, url, time.perf_counter() - started
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"pesto-serve {project} exited with {process.returncode}") from None
            time.sleep(0.005)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def sizes(url: str) -> None:
    print("## The page's files (as sent; gzip -9 for reference)")
    total = total_gzip = 0
    for path in PAGE_PATHS:
        content = get(url + path)
        packed = len(gzip.compress(content, 9))
        total += len(content)
        total_gzip += packed
        print(f"  {path:<20} {len(content):>7,} B   gzip {packed:>6,} B")
    print(f"  {'total':<20} {total:>7,} B   gzip {total_gzip:>6,} B")


def start_times(project: Path, starts: int) -> None:
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(starts):
        for page in (True, False):
            process, _url, seconds = start(project, page)
            stop(process)
            times[page].append(seconds)
    print(f"## Start to ready, {project.name}, {starts} starts each, taking turns")
    for page in (True, False):
        values = times[page]
        print(
            f"  PESTO_PAGE={int(page)}  median {statistics.median(values) * 1000:6.0f} ms   "
            f"min {min(values) * 1000:6.0f} ms   max {max(values) * 1000:6.0f} ms"
        )
    ratio = statistics.median(times[True]) / statistics.median(times[False])
    print(f"  ratio with/without: {ratio:.3f}")


def mount_cost(project: Path) -> None:
    """What the page adds to a start, measured in a fresh interpreter that has imported the rest
    of the runtime: importing its module, then mounting it (reading its files, the fields table)."""
    code = (
        "import time, bottle\n"
        "from pesto_pack.plugins import default_registry\n"
        "from pesto_serve.host import project_on_host\n"
        "from pesto_serve.service import Service\n"
        "from pesto_serve.settings import Settings\n"
        "started = time.perf_counter()\n"
        "from pesto_serve.page import mount_page\n"
        "imported = time.perf_counter() - started\n"
        f"with project_on_host({str(project)!r}, (), Settings()) as (project, settings):\n"
        "    service = Service(project.api, settings, default_registry())\n"
        "    started = time.perf_counter()\n"
        "    mount_page(bottle.Bottle(), service)\n"
        "    print(imported, time.perf_counter() - started)\n"
    )
    runs = [
        [
            float(x)
            for x in subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout.split()
        ]
        for _ in range(5)
    ]
    imported = statistics.median(run[0] for run in runs)
    mounted = statistics.median(run[1] for run in runs)
    print(
        f"## In-process, median of 5 fresh interpreters: importing pesto_serve.page "
        f"{imported * 1000:.2f} ms, mounting it (first time) {mounted * 1000:.2f} ms"
    )


def load_times(url: str) -> None:
    rounds = []
    for _ in range(50):
        started = time.perf_counter()
        for path in PAGE_PATHS:
            get(url + path)
        rounds.append(time.perf_counter() - started)
    print(
        f"## GET / and its files over loopback: median {statistics.median(rounds) * 1000:.1f} ms (50 rounds)"
    )


def browser_time(url: str) -> None:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service as ChromeService
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError:
        print("## Browser: selenium is not installed; skipped")
        return
    if not (Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists()):
        print("## Browser: no /usr/bin/chromium and /usr/bin/chromedriver; skipped")
        return
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    sys.path.insert(0, str(REPO / "tests"))
    from browser_support import CHROMIUM_FLAGS  # the flags the browser tests run Chromium with

    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    with tempfile.TemporaryDirectory() as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(
            service=ChromeService(executable_path="/usr/bin/chromedriver"), options=options
        )
        try:
            times = []
            for _ in range(10):
                driver.get("about:blank")
                started = time.perf_counter()
                driver.get(url + "/")
                WebDriverWait(driver, 20).until(lambda d: d.find_element("id", "inputs").is_displayed())
                times.append(time.perf_counter() - started)
        finally:
            driver.quit()
    print(
        f"## Headless Chromium, navigation to the form shown: median {statistics.median(times) * 1000:.0f} ms "
        f"(min {min(times) * 1000:.0f}, 10 loads, cache on)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--project", type=Path, default=REPO / "tests" / "projects" / "template")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    print(
        f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} on {os.cpu_count()} CPUs"
    )
    process, url, _seconds = start(args.project, page=True)
    try:
        sizes(url)
        load_times(url)
        if not args.no_browser:
            browser_time(url)
    finally:
        stop(process)
    mount_cost(args.project)
    start_times(args.project, args.starts)


if __name__ == "__main__":
    main()
