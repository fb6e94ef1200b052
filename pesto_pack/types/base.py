"""What a payload type is: one object that every tool asks about one kind of value.

The runtime decodes requests and encodes answers with it, schemagen and describe take its
schema definition, the pytest plugin reads and writes test files and compares answers with it.
One object serves both directions and both sides, so they can never disagree on a format.
"""

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pesto_pack.errors import PayloadError

JSON = Any
"""A value as it travels in a request or an answer: what `json.loads` gives."""


@dataclass(frozen=True)
class DecodeSettings:
    """What the operator allows a request to make the service do while decoding."""

    uri_allowlist: tuple[str, ...] = ()
    """URI prefixes (`https://data.example/`, `file:///data/`) a value may point to (none)."""
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


@dataclass(frozen=True)
class Pictures:
    """How two differing values of one type look, drawn for a person reading a failed test:
    three PNG files of the same size, which the harness saves and puts in the HTML report."""

    expected: bytes
    actual: bytes
    difference: bytes
    """The expected and actual values drawn over each other, or their pixels' difference."""
    legend: str = ""
    """How to read `difference` (what each colour means), one line."""
    part: str = ""
    """Which part of the value they show: "" for the whole, "1" for a list's item 1."""


@dataclass
class PayloadType:
    """Base of every payload type; subclasses override what differs from plain JSON.

    `name` is the key that schemas use: `#/definitions/<name>` for a definition type
    (`Image`), or the JSON-schema `type` for a primitive (`integer`). `definition` is the JSON
    schema put under `definitions` (None for primitives). `extensions` are the test-file
    suffixes this type reads; the first one is what it writes. `items` is the type of one
    item when this type is an array of another (`Images` of `Image`), else None.
    """

    name: str
    definition: dict | None = None
    extensions: tuple[str, ...] = ()
    python_type: Any = None
    """The Python type a dataclass field declares for it (schemagen); None when a definition."""
    media_type: str = "application/json"
    description: str = ""
    extra: dict = field(default_factory=dict)
    items: "PayloadType | None" = None

    # -- runtime ---------------------------------------------------------------------------
    def decode(self, value: JSON, settings: DecodeSettings) -> Any:
        """Turn a validated request value into what `process()` receives."""
        return value

    def encode(self, value: Any) -> JSON:
        """Turn what `process()` returned into a JSON-serialisable answer value."""
        return plain_json(value)

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
        from pesto_pack.types.json_diff import compare_json

        return compare_json(expected, actual, tolerance)

    def draw_difference(self, expected: JSON, actual: JSON, tolerance: Tolerance) -> list[Pictures]:
        """Pictures of how two answer values that `compare` found different differ; empty when
        text says it better (JSON, numbers) or a value cannot be drawn.

        A type whose values are images (its `media_type` is `image/...` and `to_result` gives
        the image file) is drawn by its pixels; a plugin type overrides this to draw its own
        (a mask over its image, a geometry's outlines): the harness calls only this method.
        """
        if not self.media_type.startswith("image/"):
            return []
        from pesto_pack.types.pictures import image_files_pictures

        try:
            files = self.to_result(expected).content, self.to_result(actual).content
        except PayloadError:
            return []  # `compare` already said the value is not an image
        return image_files_pictures(*files, tolerance.pixel)


# -- numpy values as JSON: the one place they become plain numbers and lists ---------------
# numpy is looked up in sys.modules, never imported: a process that never imported it holds no
# numpy value, and importing it would cost a service's start-up about 0.1 s.


def plain_json(value: Any) -> JSON:
    """`value` with numpy scalars and arrays, tuples and mappings made plain JSON values.

    Users' `process()` often returns `numpy.float32(0.5)` or a tuple; `json.dumps` refuses them.
    """
    if isinstance(value, Mapping):
        return {str(key): plain_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(item) for item in value]
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, (numpy.generic, numpy.ndarray)):
        return plain_json(value.tolist())
    return value


def plain_scalar(value: Any) -> Any:
    """A numpy scalar as the Python number it holds; anything else as it is (arrays included,
    which image types take as they are)."""
    numpy = sys.modules.get("numpy")
    return value.item() if numpy is not None and isinstance(value, numpy.generic) else value


def json_default(value: Any) -> JSON:
    """The `default` of a JSON encoder: numpy values that a plugin type's `encode` left in."""
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, (numpy.generic, numpy.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_type_name(value: Any) -> str:
    """How an error names a value's type: in JSON's words for JSON values (`array`, not `list`)."""
    for kind, name in _JSON_TYPE_NAMES:
        if isinstance(value, kind):
            return name
    return type(value).__name__


_JSON_TYPE_NAMES = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (type(None), "null"),
    (Mapping, "object"),
    (list, "array"),
)


@dataclass
class ListType(PayloadType):
    """An array of another type (`Images` of `Image`): each item goes through `items`.

    In a test folder a list is a folder of files named by their index (`0.png`, `1.png`), each
    read and written by the item type; a single file of this type's extensions holds a JSON array.
    """

    def decode(self, value: JSON, settings: DecodeSettings) -> list:
        return self._each(lambda item: self.items.decode(item, settings), self._list(value))

    def encode(self, value: Any) -> JSON:
        return self._each(self.items.encode, self._list(value))

    def read_file(self, path: Path) -> JSON:
        if path.is_dir():
            return [self.items.read_file(file) for file in indexed_files(path)]
        return super().read_file(path)

    def write_file(self, value: JSON, stem: Path) -> Path:
        """Write the folder `stem` with one file per item, replacing the items it held."""
        stem.mkdir(parents=True, exist_ok=True)
        for stale in indexed_files(stem):
            stale.unlink()
        for index, item in enumerate(self._list(value)):
            self.items.write_file(item, stem / str(index))
        return stem

    def compare(self, expected: JSON, actual: JSON, tolerance: Tolerance) -> list[str]:
        if not (isinstance(expected, list) and isinstance(actual, list)):
            return super().compare(expected, actual, tolerance)
        differences = []
        if len(expected) != len(actual):
            differences.append(f"list lengths differ: expected {len(expected)}, got {len(actual)}")
        for index, (wanted, got) in enumerate(zip(expected, actual, strict=False)):
            differences += [f"item {index}: {line}" for line in self.items.compare(wanted, got, tolerance)]
        return differences

    def draw_difference(self, expected: JSON, actual: JSON, tolerance: Tolerance) -> list[Pictures]:
        """Each differing item's pictures, `part` naming the item's index."""
        if not (isinstance(expected, list) and isinstance(actual, list)):
            return []
        pictures = []
        for index, (wanted, got) in enumerate(zip(expected, actual, strict=False)):
            if self.items.compare(wanted, got, tolerance):
                pictures += [
                    replace(drawn, part=".".join(filter(None, (str(index), drawn.part))))
                    for drawn in self.items.draw_difference(wanted, got, tolerance)
                ]
        return pictures

    def _list(self, value: Any) -> list:
        """The items of a list, a tuple or an array's first axis; anything else is refused."""
        if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
            raise PayloadError(f"expected an array of {self.items.name}, got {json_type_name(value)}")
        return list(value)

    @staticmethod
    def _each(action: Callable[[Any], Any], values: list) -> list:
        """`action` on every item; an error names the item's index."""
        results = []
        for index, value in enumerate(values):
            try:
                results.append(action(value))
            except PayloadError as error:
                raise PayloadError(f"item {index}: {error.message}") from error
        return results


def indexed_files(folder: Path) -> list[Path]:
    """The files of a folder named by an index (`0.png`, `1.json`), in index order."""
    indexed = {}
    for path in folder.iterdir():
        index = path.name.split(".")[0]
        if path.is_file() and index.isdigit():
            indexed[path] = int(index)
    return sorted(indexed, key=indexed.get)
