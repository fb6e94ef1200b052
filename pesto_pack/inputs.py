"""`-i NAME=VALUE` and `-i NAME=@FILE`: a request built on the command line, typed by the schema.

A value is read the way the service's input schema types its property: `gain=1.5` is a number
because `gain` is one, `label=1.5` stays the text "1.5", `stats={"a": 1}` is parsed as JSON.
`@FILE` reads a file through the property's payload type, as a test folder's file would be
read (`image=@cat.png` is the image's bytes in base64, `notes=@notes.txt` the text); `@FOLDER`
reads a folder as a test folder's entry (a list of `0.png`, `1.png`, ...).
"""

import argparse
import json
from collections.abc import Iterable
from pathlib import Path

from pesto_pack.errors import PayloadError
from pesto_pack.folders import read_path
from pesto_pack.plugins import Registry
from pesto_pack.types.base import JSON

_BOOLEANS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


def parse_inputs(options: Iterable[str], properties: dict[str, dict], registry: Registry) -> dict[str, JSON]:
    """The request that `-i` options describe; a PayloadError naming the field when one is wrong."""
    request: dict[str, JSON] = {}
    for option in options:
        name, separator, text = option.partition("=")
        name = name.strip()
        if not separator or not name:
            raise PayloadError(f"-i {option!r}: write NAME=VALUE or NAME=@FILE")
        if name not in properties:
            known = ", ".join(properties) or "none"
            raise PayloadError(f"is not an input of this service (its inputs: {known})", name)
        if name in request:
            raise PayloadError("is given twice with -i; give it once", name)
        request[name] = input_value(name, text, properties[name], registry)
    return request


def input_value(name: str, text: str, schema_property: dict, registry: Registry) -> JSON:
    """One `-i` value as the JSON a client would send for `schema_property`."""
    if text.startswith("@"):
        return _read(name, Path(text[1:]).expanduser(), schema_property, registry)
    kind = json_kind(schema_property, registry)
    try:
        if kind == "string":
            return text
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
        if kind == "boolean":
            return _BOOLEANS[text.strip().lower()]
        return json.loads(text)
    except (ValueError, KeyError):
        shown = "true or false" if kind == "boolean" else (f"a JSON {kind}" if kind else "JSON")
        raise PayloadError(
            f"{text!r} is not {shown}; give a value of its type, or @FILE to read it from a file",
            name,
        ) from None


def json_kind(schema_property: dict, registry: Registry) -> str | None:
    """The JSON type of a property: its own `type`, or its definition's (`Image` is a string)."""
    kind = schema_property.get("type")
    if kind is None:
        definition = registry.type_for_property(schema_property).definition or {}
        kind = definition.get("type")
    return kind if isinstance(kind, str) else None


def _read(name: str, path: Path, schema_property: dict, registry: Registry) -> JSON:
    if not path.exists():
        raise PayloadError(f"@{path}: no such file", name)
    if path.is_dir():
        return read_path(path, registry)
    payload_type = registry.type_for_property(schema_property)
    try:
        return payload_type.read_file(path)
    except PayloadError as error:
        raise PayloadError(error.message, name) from None
    except OSError as error:
        raise PayloadError(f"@{path} cannot be read ({error.strerror or error})", name) from None


def add_request_arguments(parser: argparse.ArgumentParser) -> None:
    """`-i` and the batch options of `run`, in `pesto-pack run` and `pesto-serve run` alike."""
    parser.add_argument(
        "-i",
        "--input",
        dest="inputs",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="one input: NAME=VALUE typed by the input schema (gain=1.5), or NAME=@FILE read "
        "by the input's type (image=@cat.png); over the payload's keys",
    )
    parser.add_argument(
        "--input-dir",
        type=Path,
        metavar="DIR",
        help="with --output-dir: run every DIR/*/input/ folder (or, with --each, every file of "
        "DIR); alone: one request from DIR in a test folder's input/ layout",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="where a batch writes its answers: DIR/ITEM/output/ (DIR/ITEM/ with --each)",
    )
    parser.add_argument(
        "--each",
        metavar="NAME",
        help="with --input-dir: every file of DIR is the input NAME",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="redo the items whose answer is already in --output-dir (by default they are skipped)",
    )
    parser.add_argument(
        "--progress",
        choices=("auto", "bar", "lines"),
        default="auto",
        help="a progress bar (tqdm, on a terminal) or log lines (auto: the bar on a terminal)",
    )
