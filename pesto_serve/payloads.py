"""Request bodies to `process()` arguments, and `process()` answers to JSON, through the types.

A request: validated against the input schema (with the definitions), then each field decoded
by its payload type. An answer: each field encoded by its payload type, then validated against
the output schema; an answer that breaks it is the service's error (500), not the caller's.
Validators and the property-to-type table are built once, when the service starts (a served
service builds the validators in its start thread: `with_validators`, before it is ready).
"""

import dataclasses
import json
import logging
import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pesto_pack.errors import PayloadError, ProjectError
from pesto_pack.plugins import Registry
from pesto_pack.project import ServiceApi
from pesto_pack.types.base import (
    DecodeSettings,
    ListType,
    PayloadType,
    Result,
    json_default,
    json_type_name,
    plain_json,
    plain_scalar,
)
from pesto_serve.errors import AnswerError, ServiceError
from pesto_serve.schemas import BodyValidator, IoSchema

if TYPE_CHECKING:
    import jsonschema

log = logging.getLogger(__name__)

MAX_MESSAGE = 300
MAX_DEPTH = 100
"""The deepest nesting of arrays and objects a request may have: user code (dataclasses.asdict,
copy.deepcopy, json.dumps) recurses on nested values and would fail far below Python's limit."""


@dataclass(frozen=True)
class Payloads:
    """How this service reads its requests and writes its answers."""

    input: IoSchema
    output: IoSchema
    input_types: dict[str, PayloadType]
    output_types: dict[str, PayloadType]
    output_item_types: dict[str, PayloadType]
    """List outputs whose items are documents of their own (`Images`: one PNG per item)."""
    input_validator: BodyValidator | None
    output_validator: BodyValidator | None
    """None until `with_validators` (a service is not ready before: no request is decoded)."""
    decode_settings: DecodeSettings

    @classmethod
    def build(
        cls,
        api: ServiceApi,
        registry: Registry,
        decode_settings: DecodeSettings,
        validators: bool = True,
    ) -> "Payloads":
        """`validators=False`: without the validators (they import jsonschema); a service
        adds them with `with_validators` in its start thread, after its port has opened."""
        input_schema = IoSchema.from_file(api.input_schema)
        output_schema = IoSchema.from_file(api.output_schema)
        payloads = cls(
            input=input_schema,
            output=output_schema,
            input_types=_types(input_schema, registry),
            output_types=_types(output_schema, registry),
            output_item_types=_item_types(output_schema, registry),
            input_validator=None,
            output_validator=None,
            decode_settings=decode_settings,
        )
        return payloads.with_validators(api.definitions(registry)) if validators else payloads

    def with_validators(self, definitions: dict[str, dict]) -> "Payloads":
        """These payloads with both validators built; a `ProjectError` naming the schema file
        that is not a valid JSON schema."""
        return dataclasses.replace(
            self,
            input_validator=_validator(self.input, definitions, "input_schema.json"),
            output_validator=_validator(self.output, definitions, "output_schema.json"),
        )

    def decode(self, body: Any) -> dict[str, Any]:
        """The request's fields as `process()` receives them; a 400 naming the field if not."""
        if getattr(_this_thread, "large", False):  # this thread's parse_json() read a large body
            _this_thread.large = False
            with _large_bodies:
                return self._decode(body)
        return self._decode(body)

    def _decode(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ServiceError(
                400, f"the body must be a JSON object of the inputs, got a JSON {json_type_name(body)}"
            )
        error = self.input_validator.first_error(body)
        if error is not None:
            field, message = _explain(error)
            raise ServiceError(400, message, field)
        values = {}
        for name, value in body.items():
            payload_type = self.input_types.get(name)
            if payload_type is None:
                continue  # not an input of this service: ignored, as the original does
            try:
                values[name] = payload_type.decode(value, self.decode_settings)
            except PayloadError as failure:
                raise ServiceError(400, failure.message, _field(name, failure.field)) from None
            except Exception as failure:
                log.warning("decoding input %r failed", name, exc_info=True)
                raise ServiceError(400, f"cannot be read as {payload_type.name}: {failure}", name) from None
        return values

    def encode(self, answer: Any) -> dict[str, Any]:
        """`process()`'s answer as JSON values, checked against the output schema."""
        fields = _answer_fields(answer)
        encoded = {}
        for name, value in fields.items():
            if value is None:
                continue  # an output not produced this time
            payload_type = self.output_types.get(name)
            if payload_type is None:
                raise AnswerError(
                    f"the service's process() returned {name!r}, which output_schema.json does "
                    f"not declare (it declares {', '.join(self.output.properties) or 'nothing'})",
                    name,
                )
            try:
                encoded[name] = payload_type.encode(plain_scalar(value))
            except Exception as failure:
                message = failure.message if isinstance(failure, PayloadError) else str(failure)
                raise AnswerError(
                    f"the service's process() returned a value for {name!r} that cannot be "
                    f"encoded as {payload_type.name}: {message}",
                    name,
                ) from failure
        error = self.output_validator.first_error(encoded)
        if error is not None:
            field, message = _explain(error)
            where = field or "the top level"
            raise AnswerError(
                f"the service's process() returned an answer which breaks output_schema.json "
                f"at {where}: {message}",
                field,
            )
        not_json = _first_problem(encoded, strings=False)
        if not_json is not None:
            path = _path_text(not_json[0])
            raise AnswerError(
                f"the service's process() returned a value for {path!r} that JSON cannot carry "
                "(NaN and infinities are not JSON numbers); return a finite number, or None for "
                "an output not produced",
                path,
            )
        return encoded

    def result_documents(self, encoded: dict[str, Any]) -> dict[str, Result | list[Result]]:
        """An encoded answer as stateful job results: one document per key, or per list item."""
        plain = plain_json(encoded)
        documents: dict[str, Result | list[Result]] = {}
        for name, value in plain.items():
            item_type = self.output_item_types.get(name)
            if item_type is not None and isinstance(value, list):
                documents[name] = [item_type.to_result(item) for item in value]
            else:
                documents[name] = self.output_types[name].to_result(value)
        return documents


class _NotANumber(str):
    """What `NaN`, `Infinity` and `-Infinity` parse to, until refused with their field."""


LARGE_BODY_BYTES = 1024 * 1024
LARGE_BODIES_AT_ONCE = 2
"""How many large bodies are parsed, and how many decoded, at any one time. Parsing and decoding
a 4096x4096 image holds about 5 times its body (bytes, text, decoded bytes, pixels); requests
that arrive together would otherwise hold that all at once. Small bodies are never held back."""
_large_bodies = threading.BoundedSemaphore(LARGE_BODIES_AT_ONCE)
_this_thread = threading.local()


_DECODER = json.JSONDecoder(parse_constant=_NotANumber)


def parse_json(body: bytes) -> Any:
    """`_parse_json(body)`, bounded for large bodies (LARGE_BODIES_AT_ONCE)."""
    if len(body) < LARGE_BODY_BYTES:
        _this_thread.large = False
        return _parse_json(body)
    _this_thread.large = True
    with _large_bodies:
        return _parse_json(body)


def _parse_json(body: bytes) -> Any:
    """The body as JSON; a 400 for what is not JSON, and, naming the field, for what Python's
    parser lets through but a JSON answer cannot carry: NaN, Infinity, numbers too large for
    a float (`1e999`), unpaired UTF-16 surrogates (`"\\ud800"`), and nesting deeper than
    MAX_DEPTH.

    The check walks the parsed value's arrays and objects (one object for an image request),
    and looks into strings only when the bytes hold a surrogate escape.
    """
    try:
        # json.loads(body, parse_constant=...) would build a decoder on every call (1 µs of 2.5).
        value = _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except RecursionError:
        raise ServiceError(
            400, f"the body nests arrays or objects more than {MAX_DEPTH} levels deep; flatten it"
        ) from None
    except ValueError as error:
        raise ServiceError(400, f"the body is not valid JSON: {error}") from None
    # An unpaired surrogate can only come from a `\\uDxxx` escape (UTF-8 bytes cannot hold one).
    surrogates = b"\\" in body and (b"\\ud" in body or b"\\uD" in body)
    problem = _first_problem(value, surrogates)
    if problem is not None:
        path, message = problem
        raise ServiceError(400, message, _path_text(path))
    return value


def _first_problem(value: Any, strings: bool) -> tuple[list, str] | None:
    """The path to the first value a JSON answer cannot carry, and why; None if all is well.

    Only containers are pushed, each with a (parent trail, key) pair rather than a path list,
    so that a long list of numbers costs one loop and no copies.
    """
    problem = _leaf_problem(value, strings)
    if problem is not None:
        return [], problem
    stack = [(value, 0, None)] if isinstance(value, (dict, list)) else []
    while stack:
        node, depth, trail = stack.pop()
        if depth >= MAX_DEPTH:
            return _path(trail)[:1], f"nests arrays or objects more than {MAX_DEPTH} levels deep; flatten it"
        for key, item in node.items() if type(node) is dict else enumerate(node):
            if strings and type(key) is str and _has_surrogate(key):
                return _path(trail), f"has a key with an unpaired UTF-16 surrogate ({key!r}); send UTF-8"
            kind = type(item)
            if kind is dict or kind is list:
                stack.append((item, depth + 1, (trail, key)))
            elif kind is float or kind is _NotANumber or (strings and kind is str):
                problem = _leaf_problem(item, strings)
                if problem is not None:
                    return _path((trail, key)), problem
    return None


def _path(trail: tuple | None) -> list:
    path = []
    while trail is not None:
        trail, key = trail
        path.append(key)
    return path[::-1]


def _leaf_problem(value: Any, strings: bool) -> str | None:
    kind = type(value)
    if kind is _NotANumber:
        return f"{value} is not a JSON number; send a finite number"
    if kind is float and not math.isfinite(value):
        return "is a number too large for a float (it would be infinite); send a finite number"
    if strings and kind is str and _has_surrogate(value):
        return "holds an unpaired UTF-16 surrogate (\\ud800-\\udfff), which is not text; send UTF-8"
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def to_json_bytes(value: Any) -> bytes:
    """Compact JSON; numpy scalars and arrays nested in an answer become plain numbers and lists."""
    return _ENCODER.encode(value).encode()


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=json_default)
"""`allow_nan=False`: an answer is JSON or an error, never `NaN` (Payloads.encode names the field
first; this stops what a plugin type's `encode` would let through)."""


def _types(schema: IoSchema, registry: Registry) -> dict[str, PayloadType]:
    return {name: registry.type_for_property(prop) for name, prop in schema.properties.items()}


def _validator(schema: IoSchema, definitions: dict, file_name: str) -> BodyValidator:
    import jsonschema  # with the validators: after a service's port has opened

    try:
        return schema.validator(definitions)
    except jsonschema.SchemaError as error:
        where = "/".join(map(str, error.absolute_path)) or "the top level"
        raise ProjectError(
            f"{file_name} (with the definitions and user_definitions.json) is not a valid JSON "
            f"schema at {where}: {error.message}; fix the property, or regenerate the schemas "
            "with `pesto-pack schemagen`"
        ) from None


def _item_types(schema: IoSchema, registry: Registry) -> dict[str, PayloadType]:
    """List outputs of a non-JSON item type (`Images`): each item is a result of its own."""
    item_types = {}
    for name, prop in schema.properties.items():
        payload_type = registry.type_for_property(prop)
        if isinstance(payload_type, ListType) and payload_type.items.media_type != "application/json":
            item_types[name] = payload_type.items
    return item_types


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
"""The field names of each Output dataclass met, looked up once."""


def _answer_fields(answer: Any) -> dict[str, Any]:
    if type(answer) is dict:
        return answer
    names = _FIELD_NAMES.get(type(answer))
    if names is None and dataclasses.is_dataclass(answer) and not isinstance(answer, type):
        names = _FIELD_NAMES.setdefault(type(answer), tuple(f.name for f in dataclasses.fields(answer)))
    if names is not None:
        return {name: getattr(answer, name) for name in names}
    if isinstance(answer, dict):
        return answer
    raise AnswerError(
        f"the service's process() returned {type(answer).__name__}; it must return the Output "
        "dataclass of algorithm/input_output.py or a dict of the outputs"
    )


def _explain(error: "jsonschema.ValidationError") -> tuple[str | None, str]:
    """The field at fault (`image`, `areas[1].coordinates`) and what is wrong, briefly."""
    path = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        if missing:
            path.append(missing[0])
            return _path_text(path), "is required but missing"
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        message = f"must be of type {expected}, got {json_type_name(error.instance)}"
    else:
        message = error.message
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 3] + "..."
    return _path_text(path), message


def _path_text(path: list) -> str | None:
    if not path:
        return None
    text = str(path[0])
    for part in path[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _field(name: str, inner: str | None) -> str:
    if not inner or inner == name:
        return name
    return f"{name}{inner}" if inner.startswith("[") else f"{name}.{inner}"
