"""Build a PESTO project's image, start it, send one photo, print the answer and the time taken.

    python scripts/demo.py PROJECT_DIR PHOTO [--key image] [-p PROFILE ...]

The image is built as `pesto-pack build PROJECT_DIR` builds it; the container publishes its
port on 127.0.0.1 only and is removed at the end, whatever happens (errors, Ctrl-C, SIGTERM).
The photo is sent three times, so that the first answer's time shows beside the next ones'.
The photo is read the way a test folder's file is (by the payload type of its extension)
and sent as the `key` input.
"""

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from pesto_pack import containers
from pesto_pack.build import build
from pesto_pack.client import PestoClient
from pesto_pack.errors import PestoError
from pesto_pack.folders import read_path
from pesto_pack.plugins import default_registry

START_TIMEOUT = 120.0
SENDS = 3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path)
    parser.add_argument("photo", type=Path, help="the file to send")
    parser.add_argument("--key", default="image", help="the input it is sent as (default: image)")
    parser.add_argument("-p", "--profile", dest="profiles", action="extend", nargs="+", default=[])
    arguments = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so that `finally` removes the container.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        return demo(arguments.project, arguments.photo, arguments.key, arguments.profiles)
    except PestoError as error:
        print(f"demo: error: {error}", file=sys.stderr)
        return 1


def demo(project: Path, photo: Path, key: str, profiles: list[str]) -> int:
    payload = {key: read_path(photo, default_registry(), check=True)}
    started = time.perf_counter()
    tag = build(project, profiles).tag
    print(f"built {tag} in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    service = containers.start(tag, start_timeout=START_TIMEOUT)
    try:
        print(f"started {tag} at {service.url}, ready in {time.perf_counter() - started:.1f} s")
        client = PestoClient(service.url)
        answers, times = [], []
        for _ in range(SENDS):
            sent = time.perf_counter()
            answers.append(client.process(payload))
            times.append(time.perf_counter() - sent)
    finally:
        service.remove()
    print(f"removed the container {service.name}")
    print(
        f"{photo}: {json.dumps(answers[0])} in {times[0] * 1000:.0f} ms "
        f"(POST /api/v1/process; sent again: {', '.join(f'{t * 1000:.0f}' for t in times[1:])} ms)"
    )
    return 0 if all(answer == answers[0] for answer in answers) else 1


if __name__ == "__main__":
    sys.exit(main())
