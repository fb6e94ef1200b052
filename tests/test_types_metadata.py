"""The `Metadata` and `Metadatas` payload types: JSON objects."""

import numpy as np
import pytest

from pesto_pack.errors import PayloadError
from pesto_pack.types.base import DecodeSettings, Tolerance
from pesto_pack.types.metadata import METADATA, METADATAS

SETTINGS = DecodeSettings()
INFO = {"sensor": "S2A", "bands": [4, 3, 2], "cloud": 0.12, "extra": None}


def test_decode_passes_an_object():
    assert METADATA.decode(INFO, SETTINGS) is INFO


@pytest.mark.parametrize("value, kind", [([INFO], "array"), ("text", "string"), (3, "integer")])
def test_decode_refuses_what_is_not_an_object(value, kind):
    with pytest.raises(PayloadError, match=f"^metadata is a JSON object, got {kind}$"):
        METADATA.decode(value, SETTINGS)


def test_encode_makes_numpy_values_and_tuples_plain_json():
    answer = {"mean": np.float32(0.5), "size": np.int64(3), "shape": (2, 3), "hist": np.arange(3)}
    encoded = METADATA.encode(answer)
    assert encoded == {"mean": 0.5, "size": 3, "shape": [2, 3], "hist": [0, 1, 2]}
    assert type(encoded["mean"]) is float and type(encoded["size"]) is int


def test_encode_refuses_what_is_not_a_mapping():
    with pytest.raises(PayloadError, match="metadata is a JSON object, got array"):
        METADATA.encode([1, 2])


def test_metadata_test_file_round_trips(tmp_path):
    path = METADATA.write_file(INFO, tmp_path / "info")
    assert path.name == "info.json"
    assert METADATA.read_file(path) == INFO


def test_compare_metadata_structurally():
    assert METADATA.compare(INFO, dict(INFO), Tolerance()) == []
    assert METADATA.compare(INFO, {**INFO, "cloud": 0.1200001}, Tolerance(number=1e-3)) == []
    assert METADATA.compare(INFO, {**INFO, "sensor": "S2B", "new": 1}, Tolerance()) == [
        "answer['new']: unexpected (not in the expected output): 1",
        "answer['sensor']: expected 'S2A', got 'S2B'",
    ]


def test_metadatas_decode_and_encode_item_by_item():
    assert METADATAS.decode([INFO, {}], SETTINGS) == [INFO, {}]
    assert METADATAS.encode(({"n": np.int8(1)},)) == [{"n": 1}]
    with pytest.raises(PayloadError, match="^item 1: metadata is a JSON object, got string$"):
        METADATAS.decode([INFO, "x"], SETTINGS)


def test_metadatas_test_files_round_trip(tmp_path):
    folder = METADATAS.write_file([INFO, {"k": 1}], tmp_path / "infos")
    assert sorted(p.name for p in folder.iterdir()) == ["0.json", "1.json"]
    assert METADATAS.read_file(folder) == [INFO, {"k": 1}]
    (tmp_path / "list.json").write_text('[{"k": 1}]')
    assert METADATAS.read_file(tmp_path / "list.json") == [{"k": 1}]


def test_metadatas_compare_lengths():
    assert METADATAS.compare([INFO], [INFO, INFO], Tolerance()) == ["list lengths differ: expected 1, got 2"]
