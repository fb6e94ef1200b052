"""A project folder served on the host: no image, the same app (`pesto-serve`, tests).

In an image the merged api files sit in /etc/pesto. On the host they are written to a
temporary folder that `PESTO_CONFIG_DIR` names while the service runs, so user code reading
its config (`os.environ.get("PESTO_CONFIG_DIR", "/etc/pesto")`) finds it in both places.
"""

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from pesto_pack.project import Project, load
from pesto_serve.settings import Settings


@contextmanager
def project_on_host(
    project_dir: Path | str, profiles: Sequence[str], settings: Settings, check_config: bool = True
) -> Iterator[tuple[Project, Settings]]:
    """The project with its profiles, and settings pointing at it and at its merged api files.

    `check_config=False`: config.json is not checked against its schema here (a served
    service checks it in its start thread: `Service(check_at_start="pesto/api")`)."""
    project = load(project_dir, profiles, defer_config_check=not check_config)
    previous = os.environ.get("PESTO_CONFIG_DIR")
    with tempfile.TemporaryDirectory(prefix="pesto-config-") as config_dir:
        project.api.write(Path(config_dir))
        os.environ["PESTO_CONFIG_DIR"] = config_dir
        try:
            yield project, replace(settings, project_dir=project.root, config_dir=Path(config_dir))
        finally:
            if previous is None:
                os.environ.pop("PESTO_CONFIG_DIR", None)
            else:
                os.environ["PESTO_CONFIG_DIR"] = previous
