"""The plugin's options: each one a command-line flag and a matching ini key.

The command line wins over the ini file (`[tool.pytest.ini_options]` `pesto_image = ...`),
which wins over the default.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pesto_pack.types.base import Tolerance

# name, ini type, metavar, help, default (None: unset)
OPTIONS: tuple[tuple[str, str, str, str, Any], ...] = (
    ("image", "string", "NAME:TAG", "service image to start in a container for the session", None),
    ("url", "string", "URL", "base URL of a service that is already running (no container)", None),
    ("keep", "bool", "", "leave the container running after the session; print its address", False),
    ("gpus", "string", "GPUS", "GPUs for the container as `docker run --gpus`: all, a count, ids 0,1", None),
    ("env", "linelist", "KEY=VALUE", "environment variable for the container (repeatable)", []),
    (
        "profile",
        "linelist",
        "PROFILE",
        "profile the service was built with (repeatable, in order): "
        "expected_describe.PROFILE.json updates expected_describe.json key by key",
        [],
    ),
    ("tolerance", "string", "NUMBER", "largest difference between expected and actual numbers", 1e-6),
    ("pixel_tolerance", "string", "NUMBER", "largest difference of any image pixel value", 0),
    ("start_timeout", "string", "SECONDS", "wait this long for the container's service to be ready", 120),
    ("timeout", "string", "SECONDS", "limit of one request, and of one stateful job's run", 300),
    ("results", "string", "PATH", "write the original `pesto test` results.json summary there", None),
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("pesto", "PESTO service tests (test folders of pesto/tests/resources)")
    for name, ini_type, metavar, help_text, default in OPTIONS:
        flag, dest = "--pesto-" + name.replace("_", "-"), f"pesto_{name}"
        shown = "" if default is None or isinstance(default, (bool, list)) else f" (default {default})"
        if ini_type == "bool":
            group.addoption(flag, action="store_true", default=None, dest=dest, help=help_text)
        else:
            action = "append" if ini_type == "linelist" else "store"
            group.addoption(
                flag, action=action, default=None, dest=dest, metavar=metavar, help=help_text + shown
            )
        parser.addini(dest, help_text + shown, type=ini_type)
    group.addoption(
        "--pesto-update",
        action="store_true",
        default=False,
        dest="pesto_update",
        help="write the service's actual answers as the new expected files (review with git diff)",
    )


@dataclass(frozen=True)
class HarnessOptions:
    image: str | None = None
    url: str | None = None
    keep: bool = False
    gpus: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    profiles: tuple[str, ...] = ()
    tolerance: Tolerance = Tolerance()
    start_timeout: float = 120.0
    timeout: float = 300.0
    results: Path | None = None
    update: bool = False

    @property
    def active(self) -> bool:
        """Whether a service to test is named; without one the plugin collects nothing."""
        return bool(self.image or self.url)

    @classmethod
    def from_config(cls, config: pytest.Config) -> "HarnessOptions":
        value = _reader(config)
        results = value("results", str)
        return cls(
            image=value("image", str),
            url=value("url", str),
            keep=bool(value("keep", bool)),
            gpus=value("gpus", str),
            env=_environment(value("env", list) or []),
            profiles=tuple(value("profile", list) or ()),
            tolerance=Tolerance(
                number=value("tolerance", _number("tolerance")),
                pixel=value("pixel_tolerance", _number("pixel_tolerance")),
            ),
            start_timeout=value("start_timeout", _number("start_timeout")),
            timeout=value("timeout", _number("timeout")),
            results=Path(results).expanduser().absolute() if results else None,
            update=bool(config.getoption("pesto_update")),
        )


def _reader(config: pytest.Config) -> Callable[[str, Callable], Any]:
    defaults = {name: default for name, _, _, _, default in OPTIONS}

    def value(name: str, convert: Callable) -> Any:
        given = config.getoption(f"pesto_{name}")
        if given in (None, []):
            given = config.getini(f"pesto_{name}")
        if given in (None, "", []):
            return defaults[name]
        return convert(given)

    return value


def _number(name: str) -> Callable[[Any], float]:
    def convert(text: Any) -> float:
        try:
            number = float(text)
        except ValueError:
            raise pytest.UsageError(f"--pesto-{name.replace('_', '-')}: {text!r} is not a number") from None
        if number < 0:
            raise pytest.UsageError(f"--pesto-{name.replace('_', '-')}: {text!r} must not be negative")
        return number

    return convert


def _environment(pairs: list[str]) -> dict[str, str]:
    environment = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise pytest.UsageError(f"--pesto-env: {pair!r} is not KEY=VALUE")
        environment[key] = value
    return environment
