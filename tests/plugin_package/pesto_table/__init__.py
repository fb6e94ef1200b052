"""A third-party pesto plugin as a user would write one: a CSV `Table` type and a profile.

Its package would declare, in pyproject.toml:

    [project.entry-points.pesto]
    table = "pesto_table"
"""

import csv
import io
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from pesto_pack import hookimpl
from pesto_pack.errors import PayloadError
from pesto_pack.profiles import BuildSettings, Profile
from pesto_pack.types.base import JSON, DecodeSettings, PayloadType, Result


class TableType(PayloadType):
    """`Table`: CSV text on the wire and in `.csv` test files, a list of rows in `process()`."""

    def decode(self, value: JSON, settings: DecodeSettings) -> list[list[str]]:
        if not isinstance(value, str):
            raise PayloadError("a table is CSV text")
        return list(csv.reader(io.StringIO(value)))

    def encode(self, value: list[list]) -> JSON:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(value)
        return text.getvalue()

    def to_result(self, value: JSON) -> Result:
        return Result(value.encode(), self.media_type)

    def from_result(self, result: Result) -> JSON:
        return result.content.decode()

    def read_file(self, path: Path) -> JSON:
        return path.read_text(encoding="utf-8")

    def write_file(self, value: JSON, stem: Path) -> Path:
        path = stem.with_name(stem.name + self.extensions[0])
        path.write_text(value, encoding="utf-8")
        return path


TABLE = TableType(
    "Table",
    definition={"type": "string", "description": "A table as CSV text, one row a line"},
    extensions=(".csv",),
    media_type="text/csv",
)


def _debug(settings: BuildSettings) -> BuildSettings:
    return replace(
        settings,
        environments={**settings.environments, "PESTO_LOG_FORMAT": "text", "DEBUG": "1"},
        labels={**settings.labels, "org.example.debug": "true"},
    )


@hookimpl
def register_payload_types(register: Callable[[PayloadType], None]) -> None:
    register(TABLE)


@hookimpl
def register_profiles(register: Callable[[Profile], None]) -> None:
    register(Profile("debug", "verbose logs in the service", _debug))
