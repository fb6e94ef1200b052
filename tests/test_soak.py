"""A bounded soak of the real server on loopback: mixed valid and invalid requests, concurrency 16.

Short form (the default, in CI): 20 seconds. Long form, by one command:

    PESTO_SOAK=long scripts/test tests/test_soak.py -s

10 minutes or 50,000 requests, whichever comes first. Either stops by itself and passes only
with: every answer the status its request must get (so no unexpected 5xx), no connection
dropped (every request sent got a whole answer), and the service's resident memory flat
within 10% from the end of the warm-up (the first fifth of the run) to the end. The figures
are printed (`-s`) for RELIABILITY.md.
"""

import base64
import http.client
import io
import itertools
import json
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from subprocess_support import pesto_serve, running

LONG = os.environ.get("PESTO_SOAK", "").lower() == "long"
DURATION = 600.0 if LONG else 20.0
MAX_REQUESTS = 50_000 if LONG else 1_000_000
CONCURRENCY = 16
WARM_UP = 0.2
RSS_TOLERANCE = 0.10
MAX_BODY_BYTES = 1_000_000


def png_base64(size: int) -> str:
    pixels = (np.arange(size * size * 3) % 251).astype(np.uint8).reshape(size, size, 3)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


POLYGON = {"type": "Polygon", "coordinates": [[[0, 0], [0, 5], [5, 5], [5, 0], [0, 0]]]}
JSON = "application/json"


@dataclass(frozen=True)
class Kind:
    """One kind of request of the mix, and the status it must get."""

    name: str
    status: int
    method: str = "POST"
    path: str = "/api/v1/process"
    body: bytes | None = None
    content_type: str | None = JSON


def process(name: str, status: int, value) -> Kind:
    return Kind(name, status, body=value if isinstance(value, bytes) else json.dumps(value).encode())


MIX = [
    process("text and numbers", 200, {"text": "soak", "count": 7, "ratio": 0.5, "flag": True}),
    process("image 64x64", 200, {"image": png_base64(64)}),
    process(
        "images and polygons",
        200,
        {"images": [png_base64(16)] * 3, "shapes": [POLYGON] * 4, "meta": {"a": [1]}},
    ),
    process("text and numbers", 200, {"text": "soak again", "count": -1}),
    Kind("describe", 200, "GET", "/api/v1/describe"),
    process("not JSON", 400, b"{not json"),
    process("wrong type", 400, {"count": "seven"}),
    process("base64 that is not an image", 400, {"image": base64.b64encode(b"no image here").decode()}),
    process("file URI", 400, {"image": "file:///etc/passwd"}),
    process("NaN", 400, b'{"ratio": NaN}'),
    process("deep nesting", 400, b'{"meta":' + b'{"a":' * 200 + b"1" + b"}" * 200 + b"}"),
    process("over the body limit", 413, {"text": "x" * MAX_BODY_BYTES}),
    Kind("wrong content type", 415, body=b"text=a", content_type="text/plain"),
    Kind("unknown route", 404, "GET", "/api/v1/nothing"),
    Kind("health", 200, "GET", "/api/v1/health"),
]


@dataclass
class Tally:
    """What the clients saw, added up under a lock."""

    sent: int = 0
    statuses: Counter = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Soak:
    """CONCURRENCY clients on keep-alive connections, each taking the next request of the mix."""

    def __init__(self, port: int, pid: int):
        self.port = port
        self.pid = pid
        self.tally = Tally()
        self.kinds = itertools.cycle(MIX)
        self.next_lock = threading.Lock()
        self.stop = threading.Event()
        self.rss: list[tuple[float, int]] = []  # (seconds since start, kB)

    def run(self) -> float:
        started = time.monotonic()
        clients = [threading.Thread(target=self._client) for _ in range(CONCURRENCY)]
        for client in clients:
            client.start()
        while not self.stop.is_set():
            elapsed = time.monotonic() - started
            self.rss.append((elapsed, resident_kb(self.pid)))
            if elapsed >= DURATION or self.tally.sent >= MAX_REQUESTS:
                self.stop.set()
            self.stop.wait(0.5)
        for client in clients:
            client.join(60)
        return time.monotonic() - started

    def _next(self) -> Kind | None:
        with self.next_lock:
            if self.stop.is_set() or self.tally.sent >= MAX_REQUESTS:
                return None
            self.tally.sent += 1
            return next(self.kinds)

    def _client(self) -> None:
        connection = None
        while (kind := self._next()) is not None:
            connection = connection or http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            headers = {"Content-Type": kind.content_type} if kind.body is not None else {}
            try:
                connection.request(kind.method, kind.path, kind.body, headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as error:
                with self.tally.lock:
                    self.tally.dropped.append(f"{kind.name}: {error!r}")
                connection.close()
                connection = None
                continue
            with self.tally.lock:
                self.tally.statuses[response.status] += 1
                if response.status != kind.status:
                    self.tally.unexpected.append(f"{kind.name}: {response.status}, not {kind.status}")
            if response.will_close:
                connection.close()
                connection = None
        if connection is not None:
            connection.close()


def resident_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1])


def test_soak_mixed_requests_no_unexpected_status_no_drop_flat_memory(tmp_path):
    environment = {
        "PESTO_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        "PESTO_SLOTS": "4",
        "PESTO_LOG_FORMAT": "json",
    }
    with running(pesto_serve("mirror"), tmp_path, environment) as server:
        soak = Soak(int(server.url.rsplit(":", 1)[1]), server.process.pid)
        seconds = soak.run()
        assert server.process.poll() is None, server.log_text()[-3000:]
    tally = soak.tally
    answered = sum(tally.statuses.values())
    settled = [kb for elapsed, kb in soak.rss if elapsed >= WARM_UP * seconds]
    baseline, peak, final = settled[0], max(settled), settled[-1]
    print(
        f"\nsoak ({'long' if LONG else 'short'}): {answered} answers in {seconds:.1f} s "
        f"({answered / seconds:.0f}/s) at concurrency {CONCURRENCY}; statuses {dict(sorted(tally.statuses.items()))}; "
        f"dropped {len(tally.dropped)}; unexpected {len(tally.unexpected)}; resident memory after warm-up "
        f"{baseline / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB (+{(peak / baseline - 1) * 100:.1f}%), "
        f"end {final / 1024:.1f} MiB; start {soak.rss[0][1] / 1024:.1f} MiB"
    )
    assert tally.dropped == [], tally.dropped[:10]
    assert tally.unexpected == [], tally.unexpected[:10]
    assert answered == tally.sent and answered >= len(MIX)
    assert peak <= baseline * (1 + RSS_TOLERANCE), f"resident memory grew from {baseline} kB to {peak} kB"
