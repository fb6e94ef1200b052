"""The schema files read as the original writes them, and the quick validator agreeing with jsonschema."""

import jsonschema
import numpy as np
import pytest

from pesto_pack.plugins import default_registry
from pesto_pack.project import load
from pesto_serve.schemas import IoSchema
from serve_support import PROJECTS

TEMPLATE = load(PROJECTS / "template").api
DEFINITIONS = TEMPLATE.definitions(default_registry())
BOX = {"type": "Polygon", "coordinates": [[[0, 0], [0, 1], [1, 1], [1, 0], [0, 0]]]}
FEATURE = {"type": "Feature", "geometry": BOX, "properties": None}


def test_the_original_flat_format_is_read():
    schema = IoSchema.from_file(TEMPLATE.input_schema)
    assert list(schema.properties) == [
        "image",
        "dict_parameter",
        "object_parameter",
        "integer_parameter",
        "number_parameter",
        "string_parameter",
    ]
    assert schema.required == ("image",)


def test_a_standard_object_schema_is_read_too():
    schema = IoSchema.from_file(
        {"type": "object", "title": "t", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    )
    assert (schema.properties, schema.required, schema.extras) == (
        {"a": {"type": "string"}},
        ("a",),
        {"type": "object", "title": "t"},
    )


INPUTS = [
    {"image": "aGVsbG8="},
    {"image": 1},
    {},
    {"image": "x", "dict_parameter": []},
    {"image": "x", "integer_parameter": 1.0},
    {"image": "x", "integer_parameter": 1.5},
    {"image": "x", "integer_parameter": True},
    {"image": "x", "number_parameter": "1"},
    {"image": "x", "string_parameter": None},
    {"image": "x", "unknown": object()},
]
OUTPUTS = [
    {"areas": [BOX]},
    {"areas": [{"type": "Point", "coordinates": [0, 0]}]},
    {"areas": [dict(BOX, coordinates=[[[0, 0], [0, 1]]])]},
    {"areas": BOX},
    {"areas": ({"type": "Polygon", "coordinates": (((0, 0), (0, 1), (1, 1), (0, 0)),)},)},
    {"integer_output": np.int64(3)},
    {"integer_output": np.float32(3.5)},
    {"image_list": ["a", "b"]},
    {"image_list": ["a", 2]},
    {"geojson": {"type": "FeatureCollection", "features": [FEATURE]}},
    {"geojson": {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": BOX}]}},
    {"geojson": {"type": "Feature"}},
]


@pytest.mark.parametrize(
    "side, body",
    [("input_schema", body) for body in INPUTS] + [("output_schema", body) for body in OUTPUTS],
)
def test_the_quick_validator_agrees_with_jsonschema(side, body):
    schema = IoSchema.from_file(getattr(TEMPLATE, side))
    quick = schema.validator(DEFINITIONS).first_error(body)
    reference = jsonschema.validators.extend(
        jsonschema.Draft7Validator,
        type_checker=jsonschema.Draft7Validator.TYPE_CHECKER.redefine_many(
            {
                "integer": lambda _, v: (
                    (isinstance(v, (int, np.integer)) and not isinstance(v, bool))
                    or (isinstance(v, float) and v.is_integer())
                ),
                "array": lambda _, v: isinstance(v, (list, tuple)),
            }
        ),
    )(schema.object_schema(DEFINITIONS))
    assert (quick is None) == reference.is_valid(body)
