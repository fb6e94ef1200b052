"""What a payload type is: one object that every tool asks about one kind of value.

The runtime decodes requests and encodes answers with it, schemagen and describe take its
schema definition, the pytest plugin reads and writes test files and compares answers with it.
One object serves both directions and both sides, so they can never disagree on a format.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pesto_pack.errors import PayloadError

JSON = Any
"""A value as it travels in a request or an answer: what `json.loads` gives."""


@dataclass(frozen=True)
class DecodeSettings:
    """What the operator allows a request to make the service do while decoding."""

    uri_allowlist: tuple[str, ...] = ()
    """URI prefixes (`https://data.example/`, `file:///data/`) a value may point to; none by default."""
    max_image_pixels: int = 178_956_970
    """Images claiming more pixels are refused before they are decoded (decompression bombs)."""


@dataclass(frozen=True)
class Tolerance:
    """How far an actual answer may be from the expected one and still pass."""

    number: float = 1e-6
    """Largest allowed absolute difference between an expected and an actual number."""
    pixel: float = 0.0
    """Largest allowed absolute difference of any pixel value."""


@dataclass(frozen=True)
class Result:
    """One answer value as a standalone document (a stateful job's result content)."""

    content: bytes
    media_type: str


@dataclass
class PayloadType:
    """Base of every payload type; subclasses override what differs from plain JSON.

    `name` is the key that schemas use: `#/definitions/<name>` for a definition type
    (`Image`), or the JSON-schema `type` for a primitive (`integer`). `definition` is the JSON
    schema put under `definitions` (None for primitives). `extensions` are the test-file
    suffixes this type reads; the first one is what it writes.
    """

    name: str
    definition: dict | None = None
    extensions: tuple[str, ...] = ()
    python_type: Any = None
    """The Python type a dataclass field declares for it (schemagen); None when a definition."""
    media_type: str = "application/json"
    description: str = ""
    extra: dict = field(default_factory=dict)

    # -- runtime ---------------------------------------------------------------------------
    def decode(self, value: JSON, settings: DecodeSettings) -> Any:
        """Turn a validated request value into what `process()` receives."""
        return value

    def encode(self, value: Any) -> JSON:
        """Turn what `process()` returned into a JSON-serialisable answer value."""
        return value

    def to_result(self, value: JSON) -> Result:
        """An encoded answer value as a standalone document (stateful jobs' result content)."""
        return Result(json.dumps(value).encode(), "application/json")

    def from_result(self, result: Result) -> JSON:
        """The answer value back from a standalone document (the harness fetching job results)."""
        return json.loads(result.content)

    # -- test files ------------------------------------------------------------------------
    def read_file(self, path: Path) -> JSON:
        """Read a test file into the value a client would send (or the service answers)."""
        try:
            return json.loads(path.read_text())
        except (UnicodeDecodeError, ValueError) as error:
            raise PayloadError(f"{path}: not valid JSON ({error})") from error

    def write_file(self, value: JSON, stem: Path) -> Path:
        """Write an answer value as a test file named `stem` plus this type's extension."""
        path = stem.with_name(stem.name + self.extensions[0])
        path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
        return path

    def compare(self, expected: JSON, actual: JSON, tolerance: Tolerance) -> list[str]:
        """Differences between an expected and an actual answer value; empty when they match."""
        from pesto_pack.types.compare import compare_json

        return compare_json(expected, actual, tolerance)
