"""The input and output schema files, read the way the original PESTO writes them.

`pesto/api/input_schema.json` lists the properties at its top level with a `required` list
beside them (not a standard object schema); a file already in the standard form
(`{"type": "object", "properties": {...}}`) is read too. Everything else in the runtime works
on the `IoSchema` made here once, at start.
"""

import functools
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema

DRAFT = "http://json-schema.org/draft-06/schema#"
# Keys that describe the schema itself rather than name a property (the original's set).
_SCHEMA_KEYS = {"required", "definition", "definitions", "$schema", "title", "type", "content", "description"}


@functools.cache
def _validator_class() -> type:
    """Draft 7 with our type checker (`.TYPE_CHECKER`), made on first use.

    jsonschema is imported here rather than at the top: it is a third of a service's imports,
    and a service builds its validators in its start thread, after its port has opened.

    Answers may hold numpy integers and tuples (shapely's `mapping()`, array shapes), which are
    valid JSON once serialised: the output check accepts them rather than fail a correct
    answer. Request bodies come from `json.loads`, so this changes nothing for them.
    """
    import jsonschema

    type_checker = jsonschema.Draft7Validator.TYPE_CHECKER.redefine_many(
        {
            "integer": lambda _, value: (
                (isinstance(value, numbers.Integral) and not isinstance(value, bool))
                or (isinstance(value, float) and value.is_integer())
            ),
            "array": lambda _, value: isinstance(value, (list, tuple)),
        }
    )
    return jsonschema.validators.extend(jsonschema.Draft7Validator, type_checker=type_checker)


# The Python types that certainly are of a JSON type (what `json.loads` makes); any other value
# is asked of the type checker (numpy numbers, subclasses).
_EXACT_TYPES = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list, tuple),
    "null": (type(None),),
}
# Keywords that do not constrain a value: a schema of these and `type` is a plain type check.
_ANNOTATIONS = {"$schema", "$id", "$comment", "title", "description", "default", "examples"}


@dataclass(frozen=True)
class IoSchema:
    """One side (input or output) of the service: its properties and what describes them."""

    properties: dict[str, dict]
    required: tuple[str, ...]
    extras: dict
    """The file's own keys besides the properties (`title`, `description`, `content`...)."""

    @classmethod
    def from_file(cls, schema_file: dict) -> "IoSchema":
        if schema_file.get("type") == "object" and isinstance(schema_file.get("properties"), dict):
            properties = schema_file["properties"]
        else:
            properties = {
                key: value
                for key, value in schema_file.items()
                if isinstance(value, dict) and key not in ("definition", "definitions", "content", "$schema")
            }
        extras = {
            key: value
            for key, value in schema_file.items()
            if key in _SCHEMA_KEYS and key not in properties and key != "required"
        }
        return cls(dict(properties), tuple(schema_file.get("required") or ()), extras)

    def object_schema(self, definitions: dict[str, dict]) -> dict:
        """A standard JSON schema of the whole body, with the definitions its `$ref`s name."""
        schema = {"type": "object", "properties": self.properties, "definitions": definitions}
        if self.required:
            schema["required"] = list(self.required)
        return schema

    def validator(self, definitions: dict[str, dict]) -> "BodyValidator":
        """A validator made once: requests are checked without building anything."""
        return BodyValidator(self, definitions)


class BodyValidator:
    """Checks a request or an answer against one side's schema, fast when it is valid.

    jsonschema walks every keyword with its own machinery, which costs more than the rest of a
    small request. Most properties are a plain type (`{"type": "string"}`, the `Image` and
    `Metadata` definitions): those are checked with the same type checker directly, the others
    with a validator of their own schema. Only when that quick pass fails does the full schema
    run, to find and explain the error; so the answer is always jsonschema's.
    """

    def __init__(self, schema: IoSchema, definitions: dict[str, dict]):
        import jsonschema

        full_schema = schema.object_schema(definitions)
        jsonschema.Draft7Validator.check_schema(full_schema)
        self._full = _validator_class()(full_schema)
        self._required = schema.required
        self._checks = {name: _property_check(prop, definitions) for name, prop in schema.properties.items()}

    def first_error(self, body: dict) -> "jsonschema.ValidationError | None":
        """The error that best explains why `body` breaks the schema; None when it does not."""
        if self._passes(body):
            return None
        from jsonschema.exceptions import best_match  # imported when the validator was made

        return best_match(self._full.iter_errors(body))

    def _passes(self, body: dict) -> bool:
        for name in self._required:
            if name not in body:
                return False
        checks = self._checks
        for name, value in body.items():
            check = checks.get(name)
            if check is not None and not check(value):
                return False
        return True


def _property_check(prop: dict, definitions: dict[str, dict]) -> Callable[[Any], bool]:
    """A quick check of one property that passes exactly the values its schema accepts."""
    schema: dict | None = prop
    reference = prop.get("$ref")
    if isinstance(reference, str):  # draft 7: keywords beside `$ref` are ignored
        name = reference.removeprefix("#/definitions/")
        schema = definitions.get(name) if reference.startswith("#/definitions/") else None
    if schema is not None and set(schema) <= _ANNOTATIONS | {"type"}:
        json_type = schema.get("type")
        if json_type is None:
            return lambda value: True
        if isinstance(json_type, str):
            exact = _EXACT_TYPES.get(json_type, ())
            checker = _validator_class().TYPE_CHECKER
            return lambda value: type(value) in exact or checker.is_type(value, json_type)
    return _validator_class()({"allOf": [prop], "definitions": definitions}).is_valid
