"""Run the ORIGINAL PESTO's web service (processing-factory 1.7.2) on a project, outside a container.

Run with the Python of a virtualenv that has `processing-factory==1.7.2` installed.

In its image the original serves with `processing` (`pesto.ws.app:main`): uvicorn on
0.0.0.0:8080 running the FastAPI app `pesto.ws.app:app`, which reads `/etc/pesto/service.json`
and `/etc/pesto/version.json` (written by `pesto build` with its `ConfigLoader`) and imports
`algorithm.process.Process` from the PYTHONPATH. This adapter does the same on the host, in
two steps so that the service process imports only what it imports in its image:

    python original_service.py prepare PROJECT_DIR CONFIG_DIR   # the build's service.json
    python original_service.py serve PROJECT_DIR CONFIG_DIR --port P

`serve` points the two hard-coded /etc/pesto paths at CONFIG_DIR, puts PROJECT_DIR on
sys.path, and runs `pesto.ws.app`'s logging setup and uvicorn server as its `main()` does,
on 127.0.0.1:P instead of 0.0.0.0:8080. Nothing else of the original is changed.
"""

import argparse
import json
import sys
from pathlib import Path


def prepare(project: Path, config_dir: Path) -> None:
    """Write service.json, version.json and config.json as `pesto build` puts them in /etc/pesto."""
    from pesto.cli.core.build_config import BuildConfig
    from pesto.cli.core.config_loader import ConfigLoader
    from pesto.cli.core.pesto_files import PestoFiles

    build = BuildConfig.from_path(str(project / "pesto" / "build" / "build.json"))
    build.algorithm_path = str(project)
    configs = ConfigLoader.load(build)
    config_dir.mkdir(parents=True, exist_ok=True)
    for name, key in (
        ("service", PestoFiles.service),
        ("version", PestoFiles.version),
        ("config", PestoFiles.config),
    ):
        (config_dir / f"{name}.json").write_text(json.dumps(configs[key], indent=2))


def serve(project: Path, config_dir: Path, port: int) -> None:
    """The original's `pesto.ws.app.main()`, bound to loopback and reading CONFIG_DIR."""
    sys.path.insert(0, str(project))
    from pesto.ws.app import app, setup_logging
    from pesto.ws.service.describe import DescribeService
    from uvicorn import Config, Server

    DescribeService.SERVICE_JSON_PATH = str(config_dir / "service.json")
    DescribeService.VERSION_CONTENT_PATH = str(config_dir / "version.json")
    server = Server(Config(app, host="127.0.0.1", port=port))
    setup_logging()
    server.run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("prepare", "serve"):
        command = commands.add_parser(name)
        command.add_argument("project", type=Path)
        command.add_argument("config_dir", type=Path)
        if name == "serve":
            command.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.project.resolve(), args.config_dir.resolve())
    else:
        serve(args.project.resolve(), args.config_dir.resolve(), args.port)


if __name__ == "__main__":
    main()
