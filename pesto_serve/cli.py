"""`pesto-serve PROJECT_DIR`: serve a project straight from its folder, no image, no engine.

The fast inner loop: the project is read with its profiles by the same project model as a
build (`host.project_on_host`), and the same app as in an image serves it.
"""

import argparse
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

from pesto_pack.cli_options import add_profiles_option
from pesto_pack.errors import PestoError
from pesto_serve import logs
from pesto_serve.host import project_on_host
from pesto_serve.memory import limit_malloc_arenas
from pesto_serve.server import EXIT_START_FAILED, serve
from pesto_serve.settings import Settings

log = logging.getLogger("pesto_serve")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="pesto-serve",
        description="Serve a PESTO project from its folder (PESTO_* variables set the defaults). "
        "`pesto-serve run PROJECT_DIR PAYLOAD OUTPUT` answers requests with no server instead.",
    )
    parser.add_argument("project_dir", type=Path, metavar="PROJECT_DIR")
    parser.add_argument(
        "--host", help="address to listen on (PESTO_HOST; default 127.0.0.1: this machine only)"
    )
    parser.add_argument("--port", type=int, help="port to listen on (PESTO_PORT; default 8080; 0: any free)")
    add_profiles_option(parser, "profiles to apply, in order (e.g. -p stateful)")
    parser.add_argument("--slots", type=_count(1), help="requests processed at once (PESTO_SLOTS)")
    parser.add_argument("--queue-size", type=_count(0), help="requests that may wait (PESTO_QUEUE_SIZE)")
    parser.add_argument("--jobs-dir", type=Path, help="folder of stateful jobs (PESTO_JOBS_DIR)")
    parser.add_argument(
        "--jobs-url",
        help="job store shared by replicas: redis://host:6379/0 or file:///folder "
        "(PESTO_JOBS_URL; see docs/jobs.md)",
    )
    parser.add_argument("--timeout", type=float, help="seconds to wait for an answer (PESTO_PROCESS_TIMEOUT)")
    parser.add_argument("--log-format", choices=("text", "json"), help="PESTO_LOG_FORMAT")
    parser.add_argument(
        "--reload",
        action="store_true",
        help="restart when a file of algorithm/ or pesto/api/ changes (needs watchfiles)",
    )
    return parser.parse_args(argv)


def _count(minimum: int):
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    return parse


def settings_for(args: argparse.Namespace) -> Settings:
    """The PESTO_* settings, overridden by the options given on the command line."""
    settings = Settings.from_env()
    options = {
        # On the host, only this machine may call unless the user says otherwise.
        "host": args.host or (settings.host if "PESTO_HOST" in os.environ else "127.0.0.1"),
        "port": args.port,
        "slots": args.slots,
        "queue_size": args.queue_size,
        "jobs_dir": args.jobs_dir,
        "jobs_url": args.jobs_url,
        "process_timeout": args.timeout,
        "log_format": args.log_format,
    }
    return replace(settings, **{name: value for name, value in options.items() if value is not None})


def main(argv: list[str] | None = None) -> int:
    limit_malloc_arenas()  # before any thread exists (the log writer's is the first)
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [
        "run"
    ]:  # `pesto-serve run PROJECT_DIR PAYLOAD OUTPUT` (serve ./run for a folder named run)
        from pesto_serve.run import main_on_host

        return main_on_host(argv[1:])
    args = parse_args(argv)
    try:
        settings = settings_for(args)
    except PestoError as error:
        logs.configure("text")
        return _cannot_start(error)
    logs.configure(settings.log_format)
    if args.reload:
        from pesto_serve.reload import supervise

        arguments = sys.argv[1:] if argv is None else argv
        return supervise(args.project_dir, settings.host, settings.port, arguments)
    try:
        # config.json is checked against its schema in the start thread, after the port opens.
        with project_on_host(args.project_dir, args.profiles, settings, check_config=False) as (
            project,
            settings,
        ):
            mode = "stateful" if project.api.asynchronous else "stateless"
            log.info("serving %s (%s) from %s", project.tag, mode, project.root)
            return serve(project.api, settings, check_at_start="pesto/api")
    except PestoError as error:
        return _cannot_start(error)


def _cannot_start(error: PestoError) -> int:
    log.error("the service cannot start: %s", error)
    return EXIT_START_FAILED


if __name__ == "__main__":
    sys.exit(main())
