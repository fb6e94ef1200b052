"""`run`: answer one request, or a folder of them, with no server: a Job or a workflow step.

`python -m pesto_serve run PAYLOAD OUTPUT` in an image, `pesto-serve run PROJECT_DIR PAYLOAD
OUTPUT` on the host. The same `Service` as behind HTTP decodes, validates, processes and
encodes (`Service.process_now`), so an answer here equals the HTTP answer; `on_start()` runs
once, and no port is opened. The exit status says how it went: 0 done, 2 bad input (the message
names the field), 1 `process()` failed, 3 the service could not start.

PAYLOAD is a JSON file, a JSON string, `-` (stdin), a folder in a test folder's `input/` layout,
or a URL under the allow-list that image URIs use (PESTO_URI_ALLOWLIST). OUTPUT is a file (the
JSON answer), a folder (ending in `/`, or existing: the answer in a test folder's `output/`
layout), `-` (stdout, the default), or an allow-listed http(s) URL the answer is POSTed to.
"""

import argparse
import json
import logging
import signal
import sys
import tempfile
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pesto_pack.cli_options import add_profiles_option
from pesto_pack.errors import PayloadError, PestoError
from pesto_pack.folders import read_folder, write_answer
from pesto_pack.inputs import add_request_arguments, parse_inputs
from pesto_pack.plugins import default_registry
from pesto_pack.project import ServiceApi
from pesto_pack.types.images import fetch, is_under
from pesto_serve.errors import ServiceError
from pesto_serve.payloads import parse_json, to_json_bytes
from pesto_serve.service import Service
from pesto_serve.settings import Settings

log = logging.getLogger("pesto_serve.run")

EXIT_DONE = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_START_FAILED = 3
EXIT_INTERRUPTED = 130
POST_TIMEOUT_SECONDS = 60
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class BadInput(PestoError):
    """The request (or where its answer should go) is wrong: the caller's to fix, exit 2."""


class ProcessFailed(PestoError):
    """`process()` failed, or its answer could not be written: exit 1."""


@dataclass
class RunOptions:
    """What one `run` does, from either command line."""

    payload: str | None = None
    output: str = "-"
    inputs: list[str] = field(default_factory=list)
    """`-i NAME=VALUE` options, over the payload's keys."""
    input_dir: Path | None = None
    output_dir: Path | None = None
    each: str | None = None
    """With `input_dir`: every file of the folder is this input (else every `*/input/`)."""
    force: bool = False
    """With `output_dir`: redo the items whose answer is already there."""
    progress: str = "auto"


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options `run` takes in both places (the image, the host)."""
    parser.add_argument(
        "payload",
        nargs="?",
        metavar="PAYLOAD",
        help="the request: a JSON file, a JSON string, - for stdin, an input/ folder, or a URL "
        "under PESTO_URI_ALLOWLIST",
    )
    parser.add_argument(
        "output",
        nargs="?",
        default="-",
        metavar="OUTPUT",
        help="where the answer goes: a file (JSON), a folder (ending in / or existing: one file "
        "per output, as a test folder's output/), - for stdout (default), or an allow-listed URL "
        "to POST it to",
    )
    add_request_arguments(parser)


def options_of(args: argparse.Namespace) -> RunOptions:
    return RunOptions(
        payload=getattr(args, "payload", None),
        output=getattr(args, "output", "-") or "-",
        inputs=args.inputs,
        input_dir=args.input_dir,
        output_dir=args.output_dir,
        each=args.each,
        force=args.force,
        progress=args.progress,
    )


def check_options(options: RunOptions) -> None:
    """Refuse a command line that cannot mean anything, before the model is loaded."""
    if options.output_dir is not None and options.input_dir is None:
        raise BadInput("--output-dir needs --input-dir (the folder of inputs to run)")
    if options.each and options.output_dir is None:
        raise BadInput("--each needs --input-dir and --output-dir")
    if options.output_dir is not None and options.payload is not None:
        raise BadInput("give either PAYLOAD or --input-dir/--output-dir, not both")
    if options.input_dir is not None and options.payload is not None:
        raise BadInput("give either PAYLOAD or --input-dir, not both")
    if options.payload is None and options.input_dir is None and not options.inputs:
        raise BadInput("nothing to run: give PAYLOAD, -i NAME=VALUE, or --input-dir")


# -- the service, in-process -------------------------------------------------------------------


@contextmanager
def started_service(api: ServiceApi, settings: Settings) -> Iterator[Service]:
    """The project's service with `on_start()` done; a stateful one keeps its jobs in a
    temporary folder, never a shared store (the answers are returned here, as a job's results
    would be fetched), and its job threads are stopped at the end."""
    with tempfile.TemporaryDirectory(prefix="pesto-run-jobs-") as jobs:
        if api.asynchronous:
            settings = replace(settings, jobs_dir=Path(jobs), jobs_url=None)
        service = Service(api, settings)
        try:
            service.start()
            yield service
        finally:
            service.close()


def answer(service: Service, request: Any) -> dict:
    """The answer to one request, as the HTTP route answers it (plain JSON values)."""
    try:
        encoded = service.process_now(request)
    except ServiceError as error:
        message = f"field '{error.field}': {error.message}" if error.field else error.message
        if error.status < 500:
            raise BadInput(message) from None
        raise ProcessFailed(message) from None
    return json.loads(to_json_bytes(encoded))


def as_request(values: dict) -> Any:
    """Values read from files as the service would parse them from a body (NaN refused...)."""
    try:
        return parse_json(to_json_bytes(values))
    except ServiceError as error:
        raise BadInput(f"field '{error.field}': {error.message}" if error.field else error.message) from None


# -- one request -------------------------------------------------------------------------------


def read_payload(source: str, settings: Settings) -> Any:
    """The request PAYLOAD names (see the module's docstring)."""
    text = source.strip()
    try:
        if source == "-":
            return parse_json(sys.stdin.buffer.read())
        if text.startswith("{"):
            return parse_json(text.encode())
        if "://" in text:
            return parse_json(fetch(text, settings.uri_allowlist))
        path = Path(source).expanduser()
        if path.is_dir():
            folder = path / "input" if (path / "input").is_dir() else path
            return as_request(read_folder(folder, default_registry()))
        if path.is_file():
            return parse_json(path.read_bytes())
    except ServiceError as error:
        where = f" at '{error.field}'" if error.field else ""
        raise BadInput(f"the payload {_shown(source)}{where}: {error.message}") from None
    except PayloadError as error:
        raise BadInput(f"the payload {_shown(source)}: {error}") from None
    except OSError as error:
        raise BadInput(f"the payload {source} cannot be read ({error.strerror or error})") from None
    raise BadInput(
        f"the payload {_shown(source)} is neither a file, a folder, a JSON object, - (stdin), nor a URL"
    )


def request_of(options: RunOptions, service: Service, settings: Settings) -> Any:
    """PAYLOAD (or the --input-dir folder), with the `-i` options over its keys."""
    request: Any = {}
    if options.payload is not None:
        request = read_payload(options.payload, settings)
    elif options.input_dir is not None:
        request = read_payload(str(options.input_dir), settings)
    if options.inputs:
        if not isinstance(request, dict):
            raise BadInput("the payload is not a JSON object; -i cannot add inputs to it")
        request = {**request, **input_options(options.inputs, service)}
    return request


def input_options(inputs: list[str], service: Service) -> dict:
    try:
        values = parse_inputs(inputs, service.payloads.input.properties, default_registry())
    except PayloadError as error:
        raise BadInput(str(error)) from None
    return as_request(values)


def check_output(destination: str, settings: Settings) -> None:
    """Refuse a URL outside the allow-list before anything runs."""
    if "://" in destination and not any(is_under(destination, p) for p in settings.uri_allowlist):
        allowed = ", ".join(settings.uri_allowlist) or "none"
        raise BadInput(
            f"refusing to POST the answer to {destination}: not under PESTO_URI_ALLOWLIST "
            f"({allowed}); add its prefix there, or write to a file"
        )


def write_output(destination: str, result: dict, service: Service) -> None:
    """Write the answer where OUTPUT says."""
    if destination == "-":
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return
    if "://" in destination:
        _post(destination, result)
        return
    path = Path(destination).expanduser()
    try:
        if destination.endswith(("/", "\\")) or path.is_dir():
            for written in write_answer(path, result, service.payloads.output_types):
                log.info("wrote %s", written)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(to_json_bytes(result) + b"\n")
            log.info("wrote %s", path)
    except (OSError, PestoError) as error:
        raise ProcessFailed(f"the answer could not be written to {destination}: {error}") from None


def _post(url: str, result: dict) -> None:
    host = urllib.parse.urlsplit(url).hostname
    handlers = [urllib.request.ProxyHandler({})] if host in LOOPBACK_HOSTS else []
    request = urllib.request.Request(
        url,
        data=to_json_bytes(result),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.build_opener(*handlers).open(request, timeout=POST_TIMEOUT_SECONDS) as sent:
            log.info("posted the answer to %s (%d)", url, sent.status)
    except (OSError, ValueError) as error:
        raise ProcessFailed(f"the answer could not be POSTed to {url}: {error}") from None


def _shown(source: str, limit: int = 80) -> str:
    return source if len(source) <= limit else source[:limit] + "..."


# -- both ---------------------------------------------------------------------------------------


def execute(api: ServiceApi, settings: Settings, options: RunOptions) -> int:
    """Run what `options` says with the project `api`; the exit status. Ctrl-C and SIGTERM (a
    Job deleted) stop it between items: the answers written so far are whole and kept."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main_thread else None
    try:
        return _execute(api, settings, options)
    except KeyboardInterrupt:
        log.warning("interrupted: the answers written so far are kept; run again to do the rest")
        return EXIT_INTERRUPTED
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def _execute(api: ServiceApi, settings: Settings, options: RunOptions) -> int:
    from pesto_serve import batch  # the folder loop, only when a folder is run

    try:
        check_options(options)
        check_output(options.output, settings)
    except BadInput as error:
        log.error("%s", error)
        return EXIT_BAD_INPUT
    with ExitStack() as stack:
        try:
            service = stack.enter_context(started_service(api, settings))
        except Exception as error:
            if isinstance(error, PestoError):
                log.error("the service cannot start: %s", error)
            else:
                log.exception("the service cannot start: Process.on_start() raised %s", type(error).__name__)
            return EXIT_START_FAILED
        try:
            if options.output_dir is not None:
                return batch.run_folder(service, options)
            result = answer(service, request_of(options, service, settings))
            write_output(options.output, result, service)
            return EXIT_DONE
        except BadInput as error:
            log.error("bad input: %s", error)
            return EXIT_BAD_INPUT
        except ProcessFailed as error:
            log.error("%s", error)
            return EXIT_FAILED


# -- the command lines --------------------------------------------------------------------------


def main_on_host(argv: list[str]) -> int:
    """`pesto-serve run PROJECT_DIR [PAYLOAD] [OUTPUT] [options]`."""
    parser = _parser(
        "pesto-serve run",
        "Run one request, or a folder of them, through a "
        "project on this machine, with no server; exit 0 done, 2 bad input, "
        "1 process() failed, 3 the service could not start.",
    )
    parser.add_argument("project_dir", type=Path, metavar="PROJECT_DIR")
    add_run_arguments(parser)
    add_profiles_option(parser, "profiles to apply, in order (e.g. -p stateful)")
    args = parser.parse_args(argv)
    return main_on_host_with(args.project_dir, args.profiles, options_of(args), args.log_format)


def main_on_host_with(
    project_dir: Path, profiles: list[str], options: RunOptions, log_format: str | None = None
) -> int:
    """Run `options` through the project in `project_dir` (`pesto-serve run`, `pesto-pack run`)."""
    from pesto_serve.host import project_on_host

    settings = _settings(log_format)
    if settings is None:
        return EXIT_START_FAILED
    try:
        with project_on_host(project_dir, profiles, settings) as (project, settings):
            return execute(project.api, settings, options)
    except PestoError as error:
        log.error("the service cannot start: %s", error)
        return EXIT_START_FAILED


def main_in_image(argv: list[str]) -> int:
    """`python -m pesto_serve run [PAYLOAD] [OUTPUT] [options]`: the image's own project."""
    from pesto_pack.project import load_api

    parser = _parser(
        "python -m pesto_serve run",
        "Run one request, or a folder of them, "
        "through this image's service, with no server; exit 0 done, 2 bad input, "
        "1 process() failed, 3 the service could not start.",
    )
    add_run_arguments(parser)
    args = parser.parse_args(argv)
    settings = _settings(args.log_format)
    if settings is None:
        return EXIT_START_FAILED
    try:
        api = load_api(settings.config_dir)
    except PestoError as error:
        log.error("the service cannot start: %s", error)
        return EXIT_START_FAILED
    return execute(api, settings, options_of(args))


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--log-format", choices=("text", "json"), help="PESTO_LOG_FORMAT")
    return parser


def _settings(log_format: str | None) -> Settings | None:
    """The PESTO_* settings with the log format given; logging configured (None: bad settings)."""
    from pesto_serve import logs

    try:
        settings = Settings.from_env()
    except PestoError as error:
        logs.configure("text")
        log.error("the service cannot start: %s", error)
        return None
    if log_format:
        settings = replace(settings, log_format=log_format)
    logs.configure(settings.log_format)
    return settings
