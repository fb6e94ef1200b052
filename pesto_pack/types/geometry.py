"""`Polygon` and `Polygons`: GeoJSON Polygon geometries, validated, passed as plain dicts."""

import functools
import math
from collections.abc import Callable
from typing import Any

from pesto_pack.errors import PayloadError
from pesto_pack.hookspecs import hookimpl
from pesto_pack.types.base import (
    JSON,
    DecodeSettings,
    ListType,
    PayloadType,
    Pictures,
    Tolerance,
    plain_json,
)

_NUMBERS = {"type": "array", "minItems": 2, "items": {"type": "number"}}
POLYGON_DEFINITION = {
    "$schema": "http://json-schema.org/draft-06/schema#",
    "title": "Polygon",
    "description": "GeoJSON Polygon",
    "type": "object",
    "required": ["type", "coordinates"],
    "properties": {
        "type": {"type": "string", "enum": ["Polygon"]},
        "coordinates": {
            "type": "array",
            "items": {"type": "array", "minItems": 4, "items": _NUMBERS},
        },
        "bbox": {"type": "array", "minItems": 4, "items": {"type": "number"}},
    },
}
POLYGONS_DEFINITION = {"type": "array", "items": {"$ref": "#/definitions/Polygon"}}


@functools.cache
def _polygon_validator():
    """Made on first use: jsonschema is imported then, not when every service loads its
    types (a service imports it after its port has opened)."""
    import jsonschema

    return jsonschema.validators.validator_for(POLYGON_DEFINITION)(POLYGON_DEFINITION)


def check_polygon(value: JSON) -> None:
    """Refuse what is not a GeoJSON Polygon: the definition, closed rings, finite numbers."""
    from jsonschema.exceptions import best_match

    error = best_match(_polygon_validator().iter_errors(value))
    if error is not None:
        raise PayloadError(f"not a GeoJSON Polygon: at {error.json_path}: {error.message}")
    for index, ring in enumerate(value["coordinates"]):
        if ring[0] != ring[-1]:
            raise PayloadError(
                f"not a GeoJSON Polygon: ring {index} is not closed: its first position "
                f"{ring[0]} differs from its last {ring[-1]}"
            )
        if not all(math.isfinite(number) for position in ring for number in position):
            raise PayloadError(f"not a GeoJSON Polygon: ring {index} holds NaN or infinity")


class PolygonType(PayloadType):
    """`Polygon`: a GeoJSON dict both ways; answers may be any `__geo_interface__` (shapely)."""

    def decode(self, value: JSON, settings: DecodeSettings) -> dict:
        check_polygon(value)
        return value

    def encode(self, value: Any) -> JSON:
        value = plain_json(getattr(value, "__geo_interface__", value))
        check_polygon(value)
        return value

    def draw_difference(self, expected: JSON, actual: JSON, tolerance: Tolerance) -> list[Pictures]:
        """The expected and actual outlines over each other (nothing when one is no polygon)."""
        return _outlines([expected], [actual])


class PolygonsType(ListType):
    """`Polygons`: compared item by item, drawn all together in one frame."""

    def draw_difference(self, expected: JSON, actual: JSON, tolerance: Tolerance) -> list[Pictures]:
        if not (isinstance(expected, list) and isinstance(actual, list)):
            return []
        return _outlines(expected, actual)


def _outlines(expected: list[JSON], actual: list[JSON]) -> list[Pictures]:
    try:
        for polygon in [*expected, *actual]:
            check_polygon(polygon)
    except PayloadError:
        return []  # `compare` already said what is wrong with it
    if not any(polygon["coordinates"] for polygon in [*expected, *actual]):
        return []
    from pesto_pack.types.pictures import outline_pictures

    return [outline_pictures(expected, actual)]


POLYGON = PolygonType("Polygon", definition=POLYGON_DEFINITION, extensions=(".geojson", ".json"))
POLYGONS = PolygonsType(
    "Polygons", definition=POLYGONS_DEFINITION, extensions=(".geojson", ".json"), items=POLYGON
)


@hookimpl
def register_payload_types(register: Callable[[PayloadType], None]) -> None:
    register(POLYGON)
    register(POLYGONS)
