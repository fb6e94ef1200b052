"""Field helpers for a project's `Input`/`Output` dataclasses, as PESTO's `pesto.cli.fields`.

The names, signatures and metadata match the original so that a PESTO project migrates by
changing only its import line. Each helper returns an ordinary `dataclasses.field(...)`: the
dataclass behaves as plain Python at run time, and schemagen reads the metadata to write
`pesto/api/input_schema.json` and `output_schema.json`.
"""

import dataclasses
from enum import Enum, auto
from typing import Any

TYPE = "pesto.type"
"""Metadata key: the field's schema type (a `Definition` or a user definition's name)."""
DESCRIPTION = "pesto.description"
"""Metadata key: the text that schemagen puts in the property's `description`."""
REQUIRED = "pesto.required"
"""Metadata key: whether schemagen lists the field in the schema's `required` array."""
REFERENCE = "pesto.reference"
"""Metadata key: the type is a definition of a payload type plugin, written as a `$ref`."""


class Definition(Enum):
    """The built-in PESTO definitions, written `{"$ref": "#/definitions/<name>"}` in schemas."""

    Image = auto()
    Images = auto()
    Polygon = auto()
    Polygons = auto()
    Metadata = auto()
    Metadatas = auto()


def field(description: str = "", required: bool = False, **kwargs: Any) -> Any:
    """A field whose JSON type comes from its annotation (`str`, `int`, `float`, ...).

    `kwargs` go to `dataclasses.field` (`default=...`, `default_factory=...`).
    """
    return dataclasses.field(metadata={DESCRIPTION: description, REQUIRED: required}, **kwargs)


def definition(
    definition: Definition | str, description: str = "", required: bool = False, **kwargs: Any
) -> Any:
    """A field typed by a definition, whatever its annotation.

    `Definition.Image` and co. are the built-ins; a plugin's type is named by a string
    (`definition("Mask")`).
    """
    return _typed_field(definition, description, required, kwargs, reference=True)


def user_definition(definition: str, description: str = "", required: bool = False, **kwargs: Any) -> Any:
    """A field typed by an entry of `pesto/api/user_definitions.json`, inlined by schemagen."""
    return _typed_field(definition, description, required, kwargs)


def _typed_field(
    schema_type: Definition | str,
    description: str,
    required: bool,
    kwargs: dict[str, Any],
    reference: bool = False,
) -> Any:
    """The field that both `definition` and `user_definition` make: the type goes in metadata."""
    metadata = {TYPE: schema_type, DESCRIPTION: description, REQUIRED: required}
    if reference:
        metadata[REFERENCE] = True
    return dataclasses.field(metadata=metadata, **kwargs)
