"""`-i NAME=VALUE` typed by the input schema, `-i NAME=@FILE` read by the input's type, and the
batch's progress with and without tqdm."""

import base64
import logging
import sys

import pytest

from pesto_pack.errors import PayloadError
from pesto_pack.inputs import parse_inputs
from pesto_pack.plugins import default_registry
from pesto_serve import batch

PROPERTIES = {
    "image": {"$ref": "#/definitions/Image"},
    "images": {"$ref": "#/definitions/Images"},
    "label": {"type": "string"},
    "gain": {"type": "number"},
    "count": {"type": "integer"},
    "flip": {"type": "boolean"},
    "options": {"type": "object"},
    "area": {"$ref": "#/definitions/Polygon"},
}
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="
)


def parse(*options: str) -> dict:
    return parse_inputs(options, PROPERTIES, default_registry())


def test_values_are_typed_by_the_input_schema():
    request = parse(
        "gain=1.5",
        "count=3",
        "flip=true",
        "label=1.5",
        'options={"a": [1, 2]}',
        'area={"type": "Polygon", "coordinates": []}',
    )

    assert request == {
        "gain": 1.5,
        "count": 3,
        "flip": True,
        "label": "1.5",
        "options": {"a": [1, 2]},
        "area": {"type": "Polygon", "coordinates": []},
    }
    assert parse("image=https://data.example/cat.png") == {"image": "https://data.example/cat.png"}


def test_files_are_read_by_the_inputs_type(tmp_path):
    (tmp_path / "cat.png").write_bytes(PNG)
    (tmp_path / "label.txt").write_text("a cat\n")
    (tmp_path / "options.json").write_text('{"size": 3}')
    (tmp_path / "many").mkdir()
    for index in range(2):
        (tmp_path / "many" / f"{index}.png").write_bytes(PNG)

    request = parse(
        f"image=@{tmp_path / 'cat.png'}",
        f"label=@{tmp_path / 'label.txt'}",
        f"options=@{tmp_path / 'options.json'}",
        f"images=@{tmp_path / 'many'}",
    )

    encoded = base64.b64encode(PNG).decode()
    assert request == {
        "image": encoded,
        "label": "a cat\n",
        "options": {"size": 3},
        "images": [encoded, encoded],
    }


@pytest.mark.parametrize(
    "option, field, words",
    [
        ("gain=loud", "gain", "'loud' is not a JSON number"),
        ("count=1.5", "count", "is not a JSON integer"),
        ("flip=maybe", "flip", "is not true or false"),
        ("options={broken", "options", "is not a JSON object"),
        ("volume=3", "volume", "is not an input of this service (its inputs: image, images,"),
        ("image=@/no/such/file.png", "image", "no such file"),
    ],
)
def test_a_wrong_value_names_its_field(option, field, words):
    with pytest.raises(PayloadError) as raised:
        parse(option)

    assert raised.value.field == field
    assert words in str(raised.value)


def test_an_option_without_equals_or_given_twice_is_refused():
    with pytest.raises(PayloadError, match="write NAME=VALUE or NAME=@FILE"):
        parse("gain")
    with pytest.raises(PayloadError, match="given twice"):
        parse("gain=1", "gain=2")


def test_an_unreadable_json_file_names_the_field_and_the_file(tmp_path):
    (tmp_path / "options.json").write_text("{not json")

    with pytest.raises(PayloadError) as raised:
        parse(f"options=@{tmp_path / 'options.json'}")

    assert raised.value.field == "options" and "options.json: not valid JSON" in str(raised.value)


def test_progress_falls_back_to_log_lines_without_tqdm(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # `import tqdm` now fails
    caplog.set_level(logging.INFO, logger="pesto_serve.batch")

    with batch.progress_of(2, "bar") as progress:
        progress.step("a")
        progress.step("b")

    assert isinstance(progress, batch.LogProgress)
    assert "tqdm is not installed" in caplog.text and "pesto-toolkit[progress]" in caplog.text
    assert "2/2 (b):" in caplog.text and "items/s, about 0 s left" in caplog.text


def test_progress_bar_counts_with_tqdm(capsys):
    pytest.importorskip("tqdm")
    with batch.progress_of(3, "bar") as progress:
        for name in "abc":
            progress.step(name)

    assert isinstance(progress, batch.BarProgress)
    shown = capsys.readouterr().err
    assert "3/3" in shown and "100%" in shown and "item/s, c]" in shown
