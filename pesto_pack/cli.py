"""`pesto-pack`: init, schemagen, build, list and test, as the original `pesto` command.

Each subcommand is a small function over the toolkit's modules. A `PestoError` is a
problem the user can act on, and so is an error the container engine answers: the message
goes to stderr, without a traceback, and the exit status is 1 (2 for a command line
argparse refuses). Progress goes to stderr, results to
stdout, so `TAG=$(pesto-pack build .)` works.
"""

import argparse
import sys
from pathlib import Path

from pesto_pack.cli_options import add_profiles_option
from pesto_pack.errors import PestoError

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except PestoError as error:
        print(f"pesto-pack {args.command}: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"pesto-pack {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        if not _from_the_engine(error):
            raise
        print(f"pesto-pack {args.command}: error: the container engine answered: {error}", file=sys.stderr)
        return EXIT_ERROR


def _from_the_engine(error: Exception) -> bool:
    """An error the docker SDK raised: the engine's own message says what went wrong."""
    try:
        from docker.errors import DockerException
    except ImportError:  # init and schemagen work without the `build` extra
        return False
    return isinstance(error, DockerException)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pesto-pack",
        description="Turn a PESTO project (algorithm/ + pesto/) into a tested web service image.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = commands.add_parser(
        "init",
        help="create a new project from the template",
        description="Create a new PESTO project in DIR (absent or empty): a working example "
        "service with its api files, build files, profiles and test folders.",
    )
    init.add_argument("directory", type=Path, metavar="DIR")
    init.add_argument("--no-input", action="store_true", help="ask nothing: options, then defaults")
    init.add_argument("--name", help="service and image name (default: from DIR)")
    init.add_argument("--version", help="version, the image tag (default 1.0.0)")
    init.add_argument("--description", help="one line that describe answers")
    init.add_argument("--organization", help="who provides the service")
    init.add_argument("--email", help="whom to contact")
    init.set_defaults(run=_init)

    schemagen = commands.add_parser(
        "schemagen",
        help="write the schemas from algorithm/input_output.py",
        description="Write pesto/api/input_schema.json and output_schema.json from the Input "
        "and Output dataclasses of algorithm/input_output.py.",
    )
    _project_argument(schemagen)
    schemagen.add_argument("--force", action="store_true", help="overwrite schema files that differ")
    schemagen.set_defaults(run=_schemagen)

    build = commands.add_parser(
        "build",
        help="build the service image",
        description="Build the project's service image through the Docker API (Docker or "
        "Podman). Python packages are downloaded on this machine and installed in the image "
        "without network. The Dockerfiles, contexts and log are kept in the build workspace "
        "(~/.pesto/NAME/VERSION by default). The image's tag is the last line printed.",
    )
    _project_argument(build)
    add_profiles_option(build)
    build.add_argument(
        "--base-image",
        metavar="IMAGE",
        help="base image instead of dockerBaseImage (also: PESTO_BASE_IMAGE)",
    )
    build.add_argument("--tag", help="tag the image TAG instead of NAME:VERSION[-PROFILE...]")
    build.add_argument("--no-cache", action="store_true", help="rebuild every layer")
    build.add_argument(
        "--runtime-wheel",
        type=Path,
        metavar="WHEEL",
        help="install this pesto-toolkit wheel in the image instead of the running toolkit",
    )
    build.set_defaults(run=_build)

    listing = commands.add_parser(
        "list",
        help="list the PESTO images present",
        description="List the service images in the engine that pesto-pack built.",
    )
    listing.set_defaults(run=_list)

    test = commands.add_parser(
        "test",
        help="run the project's test folders against its image",
        description="Run pesto/tests/resources (expected_describe.json and the test_* "
        "folders) against the project's image, building it first when it is missing.",
    )
    _project_argument(test)
    add_profiles_option(test)
    test.add_argument("--image", help="image to test (default: the project's NAME:VERSION[-PROFILE...])")
    test.add_argument("--results", type=Path, metavar="PATH", help="where to write results.json")
    test.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="also write pytest-html's report to FILE, with the pictures of failing images (needs pytest-html)",
    )
    test.set_defaults(run=_test)

    run = commands.add_parser(
        "run",
        help="answer one request or a folder of them, from an image or a project folder",
        description="Send one request (-i NAME=VALUE, -i NAME=@FILE, --input-dir DIR) to an "
        "image's container or to a project folder run on this machine, and print the answer as "
        "JSON (or write it with -o in a test folder's output/ layout); with --input-dir DIR "
        "--output-dir DIR, answer every DIR/*/input/ with the model loaded once. Exit 0 done, "
        "2 bad input, 1 failed. The container is removed whatever happens.",
    )
    from pesto_pack.run import add_arguments

    add_arguments(run)
    run.set_defaults(run=_run)

    push = commands.add_parser(
        "push",
        help="push an image to a registry",
        description="Tag IMAGE as REGISTRY/NAME:TAG and push it through the engine, showing "
        "its progress. A registry on 127.0.0.0/8 or localhost is reached over plain HTTP with "
        "no configuration (on Docker and on Podman); credentials come from `docker login` or "
        "`podman login`. The pushed reference, by digest, is the last line printed.",
    )
    push.add_argument("image", metavar="IMAGE", help="a local image, e.g. NAME:VERSION")
    push.add_argument(
        "--registry", required=True, metavar="HOST[:PORT]", help="the registry, e.g. 127.0.0.1:5000"
    )
    push.set_defaults(run=_push)

    deploy = commands.add_parser(
        "deploy",
        help="write Kubernetes objects for the project's image",
        description="Write a folder that `kubectl apply -k DIR` takes: a Deployment (probes, "
        "graceful shutdown, resources from pesto/api/description.json, non-root and read-only), "
        "a Service, a PodDisruptionBudget and an autoscaler (CPU, or KEDA on the jobs queue of a "
        "Redis-backed stateful service). docs/deploy.md explains each object.",
    )
    _project_argument(deploy)
    add_profiles_option(deploy)
    deploy.add_argument(
        "--image", required=True, metavar="REF", help="the pushed image (`pesto-pack push` prints it)"
    )
    deploy.add_argument(
        "--replicas", type=int, default=2, metavar="N", help="replicas (default 2), the autoscaler's minimum"
    )
    deploy.add_argument(
        "--max-replicas", type=int, metavar="N", help="the autoscaler's maximum (default 4 x --replicas)"
    )
    deploy.add_argument(
        "--jobs-url",
        metavar="URL",
        help="redis://HOST:PORT/DB shared by a stateful service's replicas (no password: it comes from a Secret)",
    )
    deploy.add_argument(
        "--startup-seconds",
        type=int,
        default=300,
        metavar="S",
        help="time a replica may take to load its model (default 300)",
    )
    deploy.add_argument(
        "--autoscaler",
        choices=("auto", "cpu", "keda", "none"),
        default="auto",
        help="auto: CPU when stateless, KEDA on the jobs queue with --jobs-url",
    )
    deploy.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("deploy"),
        metavar="DIR",
        help="the folder to write (default ./deploy)",
    )
    deploy.set_defaults(run=_deploy)
    return parser


def _project_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "project_dir",
        type=Path,
        nargs="?",
        default=Path("."),
        metavar="PROJECT_DIR",
        help="the project folder (default: the current folder)",
    )


def _init(args: argparse.Namespace) -> int:
    from pesto_pack import init

    given = {q.key: getattr(args, q.key) for q in init.QUESTIONS}
    values = init.answers(args.directory, given, ask=None if args.no_input else input)
    init.create(args.directory, values)
    print(f"created {values['name']} {values['version']} in {args.directory}", file=sys.stderr)
    print(f"next: pesto-pack build {args.directory} && pesto-pack test {args.directory}", file=sys.stderr)
    return 0


def _schemagen(args: argparse.Namespace) -> int:
    from pesto_pack import schemagen

    for line in schemagen.write(args.project_dir, force=args.force):
        print(line)
    return 0


def _build(args: argparse.Namespace) -> int:
    from pesto_pack.build import build

    built = build(
        args.project_dir,
        args.profiles,
        base_image=args.base_image,
        tag=args.tag,
        no_cache=args.no_cache,
        runtime_wheel=args.runtime_wheel,
    )
    print(built.tag)
    return 0


def _list(args: argparse.Namespace) -> int:
    from pesto_pack.build.engine_images import service_images
    from pesto_pack.engine import connect

    rows = [("NAME", "TAG", "PROFILES", "SIZE", "CREATED")]
    for image in service_images(connect()):
        name, _, tag = image.tag.rpartition(":")
        rows.append(
            (
                name,
                tag,
                image.profiles or "-",
                f"{image.size / 1e6:.0f} MB",
                image.created.astimezone().strftime("%Y-%m-%d %H:%M"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _test(args: argparse.Namespace) -> int:
    from pesto_pack import project
    from pesto_pack.build import build
    from pesto_pack.build.engine_images import image_id
    from pesto_pack.engine import connect
    from pesto_pack.project_tests import html_report_arguments, run_project_tests

    html_report_arguments(args.html)  # pytest-html missing: said before any build
    image = args.image or project.load(args.project_dir, args.profiles).tag
    if image_id(connect(), image) is None:
        if args.image:
            raise PestoError(f"image {image} is not in the engine; build it or give another --image")
        print(f"{image} is not built yet: building it", file=sys.stderr)
        build(args.project_dir, args.profiles)
    return run_project_tests(args.project_dir, args.profiles, image, args.results, args.html)


def _push(args: argparse.Namespace) -> int:
    from pesto_pack.engine import connect
    from pesto_pack.push import push

    pushed = push(connect(), args.image, args.registry, log=lambda line: print(line, file=sys.stderr))
    print(pushed.reference)
    return 0


def _run(args: argparse.Namespace) -> int:
    import signal

    from pesto_pack.run import run

    # SIGTERM unwinds like Ctrl-C, so that the container is removed on the way out.
    signal.signal(signal.SIGTERM, _interrupt)
    return run(args)


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def _deploy(args: argparse.Namespace) -> int:
    from pesto_pack import deploy, project

    options = deploy.DeployOptions(
        image=args.image,
        replicas=args.replicas,
        max_replicas=args.max_replicas,
        jobs_url=args.jobs_url,
        startup_seconds=args.startup_seconds,
        autoscaler=args.autoscaler,
    )
    files = deploy.manifests(deploy.plan(project.load(args.project_dir, args.profiles), options))
    for path in deploy.write(args.output, files):
        print(f"wrote {path}", file=sys.stderr)
    print(f"next: kubectl apply -k {args.output}", file=sys.stderr)
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
