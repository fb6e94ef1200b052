"""The JSON primitives as payload types: values pass through as they are."""

from collections.abc import Callable
from pathlib import Path

from pesto_pack.errors import PayloadError
from pesto_pack.hookspecs import hookimpl
from pesto_pack.types.base import JSON, PayloadType, Result, Tolerance


class TextType(PayloadType):
    """`string`: a `.string` test file holds the text itself, not a JSON string."""

    def read_file(self, path: Path) -> JSON:
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise PayloadError(f"{path}: not UTF-8 text ({error})") from error

    def write_file(self, value: JSON, stem: Path) -> Path:
        path = stem.with_name(stem.name + self.extensions[0])
        path.write_text(str(value), encoding="utf-8")
        return path

    def to_result(self, value: JSON) -> Result:
        return Result(str(value).encode(), "text/plain; charset=utf-8")

    def from_result(self, result: Result) -> JSON:
        return result.content.decode("utf-8")

    def compare(self, expected: JSON, actual: JSON, tolerance: Tolerance) -> list[str]:
        # Test files are often saved by editors with a final newline.
        if isinstance(expected, str) and isinstance(actual, str):
            expected, actual = expected.rstrip("\n"), actual.rstrip("\n")
        return super().compare(expected, actual, tolerance)


class NumberType(PayloadType):
    """`integer` and `number`: a test file holds the number as text (`42`, `0.5`)."""

    def read_file(self, path: Path) -> JSON:
        text = path.read_text(encoding="utf-8").strip()
        try:
            return int(text) if self.name == "integer" else float(text)
        except ValueError:
            raise PayloadError(f"{path}: {text!r} is not a valid {self.name}") from None

    def write_file(self, value: JSON, stem: Path) -> Path:
        path = stem.with_name(stem.name + self.extensions[0])
        path.write_text(f"{value}\n", encoding="utf-8")
        return path


PRIMITIVES = (
    TextType("string", extensions=(".string", ".txt"), python_type=str, media_type="text/plain"),
    NumberType("integer", extensions=(".int", ".integer"), python_type=int),
    NumberType("number", extensions=(".float", ".number"), python_type=float),
    PayloadType("boolean", extensions=(".bool", ".boolean"), python_type=bool),
    PayloadType("object", extensions=(".json",), python_type=dict),
    PayloadType("array", extensions=(".json",), python_type=list),
)


@hookimpl
def register_payload_types(register: Callable[[PayloadType], None]) -> None:
    for payload_type in PRIMITIVES:
        register(payload_type)
