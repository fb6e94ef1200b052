"""`python -m pesto_serve`: the image's command, configured by PESTO_* variables and /etc/pesto.

`python -m pesto_serve run PAYLOAD OUTPUT` answers requests with no server (pesto_serve/run.py).
"""

import logging
import sys

from pesto_pack.errors import PestoError
from pesto_pack.project import load_api
from pesto_serve import logs
from pesto_serve.memory import limit_malloc_arenas
from pesto_serve.server import EXIT_START_FAILED, serve
from pesto_serve.settings import Settings

log = logging.getLogger("pesto_serve")


def main() -> int:
    limit_malloc_arenas()  # before any thread exists (the log writer's is the first)
    if sys.argv[1:2] == ["run"]:  # `python -m pesto_serve run PAYLOAD OUTPUT`: no server
        from pesto_serve.run import main_in_image

        return main_in_image(sys.argv[2:])
    try:
        settings = Settings.from_env()
    except PestoError as error:
        logs.configure("text")
        log.error("the service cannot start: %s", error)
        return EXIT_START_FAILED
    logs.configure(settings.log_format)
    try:
        # config.json is checked against its schema in the start thread, after the port opens.
        api = load_api(settings.config_dir, defer_config_check=True)
    except PestoError as error:
        log.error("the service cannot start: %s", error)
        return EXIT_START_FAILED
    return serve(api, settings, check_at_start=str(settings.config_dir))


if __name__ == "__main__":
    sys.exit(main())
