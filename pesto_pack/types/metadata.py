"""`Metadata` and `Metadatas`: JSON objects, passed to `process()` as dicts."""

from collections.abc import Callable, Mapping
from typing import Any

from pesto_pack.errors import PayloadError
from pesto_pack.hookspecs import hookimpl
from pesto_pack.types.base import (
    JSON,
    DecodeSettings,
    ListType,
    PayloadType,
    json_type_name,
    plain_json,
)

METADATA_DEFINITION = {"type": "object"}
METADATAS_DEFINITION = {"type": "array", "items": {"$ref": "#/definitions/Metadata"}}


class MetadataType(PayloadType):
    """`Metadata`: a JSON object both ways (numpy values in an answer become plain numbers)."""

    def decode(self, value: JSON, settings: DecodeSettings) -> dict:
        return _object(value)

    def encode(self, value: Any) -> JSON:
        return plain_json(_object(value))


def _object(value: Any) -> Any:
    if not isinstance(value, Mapping):
        raise PayloadError(f"metadata is a JSON object, got {json_type_name(value)}")
    return value


METADATA = MetadataType("Metadata", definition=METADATA_DEFINITION, extensions=(".json",))
METADATAS = ListType("Metadatas", definition=METADATAS_DEFINITION, extensions=(".json",), items=METADATA)


@hookimpl
def register_payload_types(register: Callable[[PayloadType], None]) -> None:
    register(METADATA)
    register(METADATAS)
