"""Keep glibc from growing one malloc arena per waitress thread: large images leave memory flat.

glibc gives a thread that finds the arenas busy an arena of its own, up to 8 per core, and
keeps what is freed in it for that arena's next use. Waitress hands each request to whichever
of its threads is free, so a service answering 4096x4096 images one after another grew by the
size of one request in each new arena: 108 MB to 1.8 GB over 16 requests, an OOM kill waiting
for a container's memory limit. With one arena the same run stays at 60 MB, and was faster
(3.40 against 3.75 s per request, interleaved: memory handed back is found again). Two arenas
(the I/O thread's and the workers') grew to 247 MB: what one request frees stays in the second.
BENCHMARKS.md, "Memory under large images", has the figures.

Applied two ways, so that every service gets it: the image sets `MALLOC_ARENA_MAX`, which glibc
reads before any code runs; `pesto-serve` on the host calls `mallopt()` at start, before the
server makes its threads. A `MALLOC_ARENA_MAX` set by the operator wins over both (a project
whose threads allocate heavily at once, outside the GIL, may want 2 or more).
"""

import ctypes
import logging
import os

log = logging.getLogger(__name__)

ARENAS = 1
"""Arenas the runtime allows when the operator sets none: every thread shares the main one."""
M_ARENA_MAX = -8
"""mallopt()'s parameter number for the arena limit (glibc's malloc.h)."""


def limit_malloc_arenas(count: int = ARENAS, environ: dict | None = None) -> int | None:
    """Cap glibc's malloc arenas at `count` unless MALLOC_ARENA_MAX is set; the cap in force
    (None when this is not glibc, whose malloc has no arenas to cap, or mallopt refused)."""
    environ = os.environ if environ is None else environ
    chosen = environ.get("MALLOC_ARENA_MAX", "").strip()
    if chosen:
        return int(chosen) if chosen.isdigit() else None  # glibc applied it at start
    libc = _glibc()
    if libc is None:
        return None
    if libc.mallopt(M_ARENA_MAX, count) != 1:
        log.warning("mallopt(M_ARENA_MAX, %d) failed: memory may grow with large requests", count)
        return None
    return count


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols: no library search at start
    except OSError:
        return None
    if not hasattr(libc, "gnu_get_libc_version"):  # only glibc has it (musl has no arenas to cap)
        return None
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    libc.mallopt.restype = ctypes.c_int
    return libc
