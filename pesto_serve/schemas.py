"""The input and output schema files, read the way the original PESTO writes them.

`pesto/api/input_schema.json` lists the properties at its top level with a `required` list
beside them (not a standard object schema); a file already in the standard form
(`{"type": "object", "properties": {...}}`) is read too. Everything else in the runtime works
on the `IoSchema` made here once, at start.
"""

import numbers
from dataclasses import dataclass

import jsonschema

DRAFT = "http://json-schema.org/draft-06/schema#"
# Keys that describe the schema itself rather than name a property (the original's set).
_SCHEMA_KEYS = {"required", "definition", "definitions", "$schema", "title", "type", "content", "description"}

# Answers may hold numpy integers and tuples (shapely's `mapping()`, array shapes), which are
# valid JSON once serialised: the output check accepts them rather than fail a correct answer.
# Request bodies come from `json.loads`, so this changes nothing for them.
_TYPE_CHECKER = jsonschema.Draft7Validator.TYPE_CHECKER.redefine_many(
    {
        "integer": lambda _, value: (
            isinstance(value, numbers.Integral) and not isinstance(value, bool)
        ) or (isinstance(value, float) and value.is_integer()),
        "array": lambda _, value: isinstance(value, (list, tuple)),
    }
)


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
                key: value for key, value in schema_file.items()
                if isinstance(value, dict) and key not in ("definition", "definitions", "content", "$schema")
            }
        extras = {
            key: value for key, value in schema_file.items()
            if key in _SCHEMA_KEYS and key not in properties and key != "required"
        }
        return cls(dict(properties), tuple(schema_file.get("required") or ()), extras)

    def object_schema(self, definitions: dict[str, dict]) -> dict:
        """A standard JSON schema of the whole body, with the definitions its `$ref`s name."""
        schema = {"type": "object", "properties": self.properties, "definitions": definitions}
        if self.required:
            schema["required"] = list(self.required)
        return schema

    def validator(self, definitions: dict[str, dict]) -> jsonschema.protocols.Validator:
        """A compiled validator, made once: requests are checked without building anything."""
        schema = self.object_schema(definitions)
        jsonschema.Draft7Validator.check_schema(schema)
        validator_class = jsonschema.validators.extend(
            jsonschema.Draft7Validator, type_checker=_TYPE_CHECKER
        )
        return validator_class(schema)
