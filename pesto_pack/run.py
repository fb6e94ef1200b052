"""`pesto-pack run IMAGE_OR_PROJECT_DIR -i NAME=VALUE ...`: an answer without writing a client.

Against a project folder it runs on this machine the way `pesto-serve run` does (in-process,
no port). Against an image, one request starts a service container (loopback only), sends the
request with the toolkit's client (which follows a stateful image's job to its results) and
removes the container; a batch (`--input-dir DIR --output-dir DIR`) runs
`python -m pesto_serve run` in a container with DIR mounted read-only and the output folder
written as the caller's user, not the image's. The container is removed whatever happens:
errors, Ctrl-C, SIGTERM.

Exit status: 0 done, 2 bad input (the service's message names the field), 1 anything else
(process() failed, the engine refused, ...), as `pesto-serve run`.
"""

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from pesto_pack.cli_options import add_profiles_option
from pesto_pack.errors import PayloadError, PestoError
from pesto_pack.inputs import add_request_arguments

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
INPUT_MOUNT = "/pesto/input"
OUTPUT_MOUNT = "/pesto/output"
START_TIMEOUT = 120.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target",
        metavar="IMAGE_OR_PROJECT_DIR",
        help="an image (name:tag) or a project folder (run on this machine, no engine)",
    )
    add_request_arguments(parser)
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="OUT_DIR",
        help="write the answer as files in a test folder's output/ layout (image.png, "
        "mean.float, ...) instead of printing it as JSON",
    )
    add_profiles_option(parser, "profiles to apply to a project folder (an image has its own)")
    parser.add_argument(
        "-e",
        "--env",
        dest="environment",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the run, in the image's container or in this process "
        "(PESTO_URI_ALLOWLIST=..., PESTO_LOG_FORMAT=json, the model's own settings)",
    )
    parser.add_argument(
        "--gpus",
        metavar="all|N|IDS",
        help="GPUs for the image's container, as `docker run --gpus` (all, a count, or 0,1)",
    )
    parser.add_argument(
        "--start-timeout",
        type=float,
        default=START_TIMEOUT,
        metavar="SECONDS",
        help=f"how long an image may take to be ready (default {START_TIMEOUT:g})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long one answer may take (default 300)",
    )


def run(args: argparse.Namespace) -> int:
    """The exit status of `pesto-pack run`."""
    if args.output_dir is not None and args.input_dir is None:
        raise PestoError("--output-dir needs --input-dir (the folder of inputs to run)")
    if args.output_dir is not None and args.output is not None:
        raise PestoError("-o is for one request, --output-dir for a folder of them: give one")
    args.environment = environment_of(args.environment)
    if Path(args.target).is_dir():
        return on_host(args)
    if args.profiles:
        raise PestoError(
            f"-p applies to a project folder; the image {args.target} was built with its profiles"
        )
    if args.output_dir is not None:
        return batch_in_container(args)
    return one_request_in_container(args)


def environment_of(options: list[str]) -> dict[str, str]:
    """`-e NAME=VALUE` options as a dict; a malformed one is refused."""
    environment = {}
    for option in options:
        name, separator, value = option.partition("=")
        if not separator or not name:
            raise PestoError(f"-e {option!r}: write NAME=VALUE")
        environment[name] = value
    return environment


def on_host(args: argparse.Namespace) -> int:
    """As `pesto-serve run PROJECT_DIR`: the same runner, in this process."""
    from pesto_serve.run import main_on_host_with, options_of

    os.environ.update(args.environment)  # read as the runtime's settings, as in a container
    output = "-" if args.output is None else f"{args.output}{os.sep}"  # -o names a folder
    return main_on_host_with(Path(args.target), args.profiles, replace(options_of(args), output=output))


def one_request_in_container(args: argparse.Namespace) -> int:
    from pesto_pack import containers
    from pesto_pack.client import JobFailed, PestoClient, RequestFailed
    from pesto_pack.folders import read_folder
    from pesto_pack.inputs import parse_inputs
    from pesto_pack.plugins import default_registry

    if args.each:
        raise PestoError("--each needs --input-dir and --output-dir")
    if args.input_dir is None and not args.inputs:
        raise PestoError("nothing to run: give -i NAME=VALUE or --input-dir DIR")
    registry = default_registry()
    request = {}
    if args.input_dir is not None:
        if not args.input_dir.is_dir():
            return _refused(f"--input-dir {args.input_dir} is not a folder")
        folder = args.input_dir / "input" if (args.input_dir / "input").is_dir() else args.input_dir
        try:
            request = read_folder(folder, registry)
        except PayloadError as error:
            return _refused(f"bad input: {error}")
    service = containers.start(
        args.target,
        args.start_timeout,
        gpus=args.gpus,
        environment=args.environment,
        label=containers.RUN_LABEL,
    )
    try:
        client = PestoClient(service.url, timeout=args.timeout, registry=registry)
        describe = client.describe()
        try:
            properties = describe.get("input", {}).get("properties", {})
            request.update(parse_inputs(args.inputs, properties, registry))
        except PayloadError as error:
            return _refused(f"bad input: {error}")
        try:
            answer = client.process(request)
        except JobFailed as error:
            return _failed(str(error))
        except RequestFailed as error:
            if error.status is not None and 400 <= error.status < 500:
                return _refused(f"bad input: {error}")
            raise
        write_answer(answer, args.output, describe.get("output", {}).get("properties", {}), registry)
        return 0
    finally:
        service.remove()


def write_answer(answer: dict, folder: Path | None, properties: dict, registry) -> None:
    """Print the answer as JSON, or write it in `folder` in a test folder's output/ layout."""
    if folder is None:
        print(json.dumps(answer, ensure_ascii=False))
        return
    from pesto_pack.folders import write_answer as write_files

    types = {key: registry.type_for_property(properties.get(key, {})) for key in answer}
    for written in write_files(folder, answer, types):
        print(f"wrote {written}", file=sys.stderr)


def batch_in_container(args: argparse.Namespace) -> int:
    """`python -m pesto_serve run --input-dir --output-dir` in the image, folders mounted."""
    from pesto_pack import containers

    inputs = [option for option in args.inputs if "=@" in option]
    if inputs:
        raise PestoError(
            f"-i {inputs[0]}: a file given with @ is not in the container; put it in each "
            "item's input/ folder, or give the value itself"
        )
    if not args.input_dir.is_dir():
        raise PestoError(f"--input-dir {args.input_dir} is not a folder")
    args.output_dir.mkdir(parents=True, exist_ok=True)
    tty = sys.stderr.isatty()
    inputs, outputs = str(args.input_dir.resolve()), str(args.output_dir.resolve())
    if inputs == outputs:  # filling in the output/ of each test folder: one writable mount
        input_mount, volumes = OUTPUT_MOUNT, {outputs: {"bind": OUTPUT_MOUNT, "mode": "rw"}}
    else:
        input_mount = INPUT_MOUNT
        volumes = {
            inputs: {"bind": INPUT_MOUNT, "mode": "ro"},
            outputs: {"bind": OUTPUT_MOUNT, "mode": "rw"},
        }
    command = [
        "python",
        "-m",
        "pesto_serve",
        "run",
        "--input-dir",
        input_mount,
        "--output-dir",
        OUTPUT_MOUNT,
        "--progress",
        args.progress,
        *(["--each", args.each] if args.each else []),
        *(["--force"] if args.force else []),
        *(part for option in args.inputs for part in ("-i", option)),
    ]
    return containers.run_to_end(
        args.target,
        command,
        _to_stderr,
        containers.RUN_LABEL,
        volumes=volumes,
        # The answers belong to whoever ran the command, not to the image's user (uid 10001).
        user=f"{os.getuid()}:{os.getgid()}",
        environment={"HOME": "/tmp", **args.environment},  # that user has no home in the image
        gpus=args.gpus,
        tty=tty,
    )


def _to_stderr(chunk: bytes) -> None:
    sys.stderr.buffer.write(chunk)
    sys.stderr.buffer.flush()


def _refused(message: str) -> int:
    print(f"pesto-pack run: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _failed(message: str) -> int:
    print(f"pesto-pack run: error: {message}", file=sys.stderr)
    return EXIT_FAILED
