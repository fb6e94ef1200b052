"""The `Polygon` and `Polygons` payload types: validated GeoJSON geometries."""

import json
import math

import pytest

from pesto_pack.errors import PayloadError
from pesto_pack.types.base import DecodeSettings, Tolerance
from pesto_pack.types.geometry import POLYGON, POLYGONS

SETTINGS = DecodeSettings()
SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]]]}
WITH_HOLE = {
    "type": "Polygon",
    "coordinates": [
        [[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]],
        [[1, 1], [2, 1], [2, 2], [1, 1]],
    ],
    "bbox": [0, 0, 4, 4],
}


@pytest.mark.parametrize("polygon", [SQUARE, WITH_HOLE])
def test_decode_passes_a_valid_polygon_as_it_is(polygon):
    assert POLYGON.decode(polygon, SETTINGS) is polygon


@pytest.mark.parametrize(
    "value, message",
    [
        ({"type": "Polygon"}, r"at \$: 'coordinates' is a required property"),
        ({**SQUARE, "type": "Point"}, r"at \$.type: 'Point' is not one of \['Polygon'\]"),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]},
            r"at \$.coordinates\[0\]: .* is too short",
        ),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, "a"], [0, 0]]]},
            r"at \$.coordinates\[0\]\[2\]\[1\]: 'a' is not of type 'number'",
        ),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, True], [0, 0]]]},
            r"at \$.coordinates\[0\]\[2\]\[1\]: True is not of type 'number'",
        ),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]},
            r"ring 0 is not closed: its first position \[0, 0\] differs from its last \[0, 1\]",
        ),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, math.nan], [0, 0]]]},
            "ring 0 holds NaN or infinity",
        ),
        ({**SQUARE, "bbox": [0, 0]}, r"at \$.bbox: .* is too short"),
        ([SQUARE], r"at \$: .* is not of type 'object'"),
    ],
)
def test_decode_refuses_what_is_not_a_polygon(value, message):
    with pytest.raises(PayloadError, match="^not a GeoJSON Polygon: " + message):
        POLYGON.decode(value, SETTINGS)


def test_encode_takes_a_dict_or_anything_with_a_geo_interface():
    class Shape:
        __geo_interface__ = {"type": "Polygon", "coordinates": (((0, 0), (1, 0), (1, 1), (0, 0)),)}

    assert POLYGON.encode(SQUARE) == SQUARE
    assert POLYGON.encode(Shape()) == {
        "type": "Polygon",
        "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]],
    }


def test_encode_refuses_an_invalid_polygon():
    with pytest.raises(PayloadError, match="ring 0 is not closed"):
        POLYGON.encode({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]})


def test_polygon_test_file_round_trips(tmp_path):
    path = POLYGON.write_file(WITH_HOLE, tmp_path / "area")
    assert path.name == "area.geojson"
    assert POLYGON.read_file(path) == WITH_HOLE


def test_read_file_refuses_a_file_that_is_not_json(tmp_path):
    (tmp_path / "area.geojson").write_text("{not json")
    with pytest.raises(PayloadError, match="area.geojson: not valid JSON"):
        POLYGON.read_file(tmp_path / "area.geojson")


def test_compare_polygons_structurally_with_the_number_tolerance():
    moved = {**SQUARE, "coordinates": [[[0, 0], [4.0001, 0], [4, 4], [0, 4], [0, 0]]]}
    assert POLYGON.compare(SQUARE, json.loads(json.dumps(SQUARE)), Tolerance()) == []
    assert POLYGON.compare(SQUARE, moved, Tolerance(number=0.001)) == []
    assert POLYGON.compare(SQUARE, moved, Tolerance()) == [
        "answer['coordinates'][0][1][0]: expected 4, got 4.0001"
    ]


def test_polygons_decode_item_by_item_and_name_the_bad_item():
    assert POLYGONS.decode([SQUARE, WITH_HOLE], SETTINGS) == [SQUARE, WITH_HOLE]
    with pytest.raises(PayloadError, match=r"^item 1: not a GeoJSON Polygon: at \$.type"):
        POLYGONS.decode([SQUARE, {**SQUARE, "type": "LineString"}], SETTINGS)
    with pytest.raises(PayloadError, match="expected an array of Polygon, got object"):
        POLYGONS.decode(SQUARE, SETTINGS)


def test_polygons_read_a_json_array_file_or_a_folder_of_items(tmp_path):
    (tmp_path / "areas.geojson").write_text(json.dumps([SQUARE, WITH_HOLE]))
    assert POLYGONS.read_file(tmp_path / "areas.geojson") == [SQUARE, WITH_HOLE]
    folder = POLYGONS.write_file([SQUARE, WITH_HOLE], tmp_path / "areas")
    assert sorted(p.name for p in folder.iterdir()) == ["0.geojson", "1.geojson"]
    assert POLYGONS.read_file(folder) == [SQUARE, WITH_HOLE]


def test_polygons_compare_item_by_item():
    assert POLYGONS.compare([SQUARE], [SQUARE], Tolerance()) == []
    assert POLYGONS.compare([SQUARE, SQUARE], [SQUARE, WITH_HOLE], Tolerance()) == [
        "item 1: answer['bbox']: unexpected (not in the expected output): [0, 0, 4, 4]",
        "item 1: answer['coordinates'][1]: unexpected (not in the expected output): "
        "[[1, 1], [2, 1], [2, 2], [1, 1]]",
    ]
