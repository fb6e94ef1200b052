"""The JSON primitives as payload types: pass-through values, text test files."""

import numpy as np
import pytest

from pesto_pack.errors import PayloadError
from pesto_pack.plugins import default_registry
from pesto_pack.types.base import DecodeSettings, Result, Tolerance

TYPES = default_registry().types


@pytest.mark.parametrize(
    "name, value, file_name, text",
    [
        ("string", "héllo\nworld", "v.string", "héllo\nworld"),
        ("integer", 42, "v.int", "42\n"),
        ("number", 0.25, "v.float", "0.25\n"),
        ("boolean", True, "v.bool", "true\n"),
        ("object", {"k": [1, 2]}, "v.json", '{\n  "k": [\n    1,\n    2\n  ]\n}\n'),
        ("array", [1, "a"], "v.json", '[\n  1,\n  "a"\n]\n'),
    ],
)
def test_primitive_test_file_round_trips(tmp_path, name, value, file_name, text):
    payload_type = TYPES[name]
    path = payload_type.write_file(value, tmp_path / "v")
    assert path.name == file_name and path.read_text(encoding="utf-8") == text
    assert payload_type.read_file(path) == value
    assert payload_type.decode(value, DecodeSettings()) == value
    assert payload_type.encode(value) == value


@pytest.mark.parametrize("name, suffix", [("integer", ".integer"), ("number", ".number")])
def test_number_files_hold_the_number_as_text(tmp_path, name, suffix):
    (tmp_path / f"v{suffix}").write_text(" 3 \n")
    assert TYPES[name].read_file(tmp_path / f"v{suffix}") == 3
    (tmp_path / f"v{suffix}").write_text("three")
    with pytest.raises(PayloadError, match=f"'three' is not a valid {name}"):
        TYPES[name].read_file(tmp_path / f"v{suffix}")


def test_string_file_must_be_utf8(tmp_path):
    (tmp_path / "v.string").write_bytes(b"\xff\xfe")
    with pytest.raises(PayloadError, match="not UTF-8 text"):
        TYPES["string"].read_file(tmp_path / "v.string")


def test_encode_makes_numpy_scalars_plain():
    assert type(TYPES["number"].encode(np.float32(0.5))) is float
    assert TYPES["array"].encode(np.arange(3)) == [0, 1, 2]


def test_string_results_are_text():
    result = TYPES["string"].to_result("hé")
    assert result == Result("hé".encode(), "text/plain; charset=utf-8")
    assert TYPES["string"].from_result(result) == "hé"
    assert TYPES["integer"].from_result(TYPES["integer"].to_result(3)) == 3


def test_compare_numbers_with_the_tolerance():
    assert TYPES["number"].compare(1.0, 1.0000001, Tolerance()) == []
    assert TYPES["number"].compare(1.0, 1.1, Tolerance()) == ["answer: expected 1.0, got 1.1"]
    assert TYPES["number"].compare(1.0, 1.1, Tolerance(number=0.2)) == []


def test_compare_strings_ignores_a_final_newline_only():
    assert TYPES["string"].compare("done\n", "done", Tolerance()) == []
    assert TYPES["string"].compare("done", "Done", Tolerance()) == ["answer: expected 'done', got 'Done'"]
