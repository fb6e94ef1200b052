"""`python -m pesto_serve`: the image's command, configured by PESTO_* variables and /etc/pesto."""

import logging
import sys

from pesto_pack.errors import PestoError
from pesto_pack.project import load_api
from pesto_serve import logs
from pesto_serve.server import EXIT_START_FAILED, serve
from pesto_serve.settings import Settings

log = logging.getLogger("pesto_serve")


def main() -> int:
    try:
        settings = Settings.from_env()
    except PestoError as error:
        logs.configure("text")
        log.error("the service cannot start: %s", error)
        return EXIT_START_FAILED
    logs.configure(settings.log_format)
    try:
        api = load_api(settings.config_dir)
    except PestoError as error:
        log.error("the service cannot start: %s", error)
        return EXIT_START_FAILED
    return serve(api, settings)


if __name__ == "__main__":
    sys.exit(main())
