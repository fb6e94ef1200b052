"""The pytest plugin's collection: which folders become items, their ids, bad folders.

Collection never contacts the service, so these run with `--collect-only` against an address
where nothing listens.
"""

import base64
import json

import numpy as np
import pytest

from images_support import png_bytes
from pesto_pack.errors import PayloadError
from pesto_pack.plugins import default_registry
from pytest_pesto.compare import without_link_hosts
from pytest_pesto.payload import read_folder
from pytest_plugin_helpers import make_folder

pytest_plugins = ["pytester"]

NOWHERE = "--pesto-url=http://127.0.0.1:9"


NOISE_PNG = png_bytes(np.random.default_rng(0).integers(0, 255, (64, 64)))


def collected_ids(result) -> list[str]:
    return [line for line in result.outlines if line.startswith("pesto/") and " " not in line]


def test_each_test_folder_and_the_expected_describe_is_one_item_named_by_its_path(pytester):
    make_folder(pytester.path, "test_1", {"text.string": "a"}, {"text.string": "a"})
    make_folder(pytester.path, "test_2", {"text.string": "b"}, {"text.string": "b"})
    (pytester.path / "pesto/tests/resources/expected_describe.json").write_text("{}")
    (pytester.path / "pesto/tests/resources/notes.md").write_text("not a test")

    result = pytester.runpytest(NOWHERE, "--collect-only", "-q")

    assert collected_ids(result) == [
        "pesto/tests/resources/expected_describe.json",
        "pesto/tests/resources/test_1",
        "pesto/tests/resources/test_2",
    ]


def test_a_test_folder_given_on_the_command_line_is_collected_alone(pytester):
    make_folder(pytester.path, "test_1", {"text.string": "a"}, {"text.string": "a"})
    make_folder(pytester.path, "test_2", {"text.string": "b"}, {"text.string": "b"})

    result = pytester.runpytest(NOWHERE, "--collect-only", "-q", "pesto/tests/resources/test_2")

    assert collected_ids(result) == ["pesto/tests/resources/test_2"]


def test_minus_k_selects_test_folders_by_name(pytester):
    make_folder(pytester.path, "test_1", {"text.string": "a"}, {"text.string": "a"})
    make_folder(pytester.path, "test_2", {"text.string": "b"}, {"text.string": "b"})

    result = pytester.runpytest(NOWHERE, "--collect-only", "-q", "-k", "test_2")

    assert collected_ids(result) == ["pesto/tests/resources/test_2"]


def test_without_a_service_the_plugin_collects_nothing(pytester):
    make_folder(pytester.path, "test_1", {"text.string": "a"}, {"text.string": "a"})

    result = pytester.runpytest("--collect-only", "-q")

    assert collected_ids(result) == []
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_the_service_can_be_named_in_the_ini_file(pytester):
    make_folder(pytester.path, "test_1", {"text.string": "a"}, {"text.string": "a"})
    pytester.makeini("[pytest]\npesto_url = http://127.0.0.1:9\n")

    result = pytester.runpytest("--collect-only", "-q")

    assert collected_ids(result) == ["pesto/tests/resources/test_1"]


def test_image_and_url_together_are_refused(pytester):
    result = pytester.runpytest(NOWHERE, "--pesto-image=svc:1")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--pesto-image*--pesto-url*give one*"])


def test_a_negative_tolerance_is_refused(pytester):
    result = pytester.runpytest(NOWHERE, "--pesto-tolerance=-1")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--pesto-tolerance*must not be negative*"])


@pytest.mark.parametrize(
    ("inputs", "expected_message"),
    [
        ({}, "*pesto/tests/resources/test_bad has no input/ folder*"),
        ({"input/image.png": b"not a png"}, "*test_bad/input/image.png: not a decodable image*"),
        ({"input/image.png": NOISE_PNG[: len(NOISE_PNG) // 2]}, "*test_bad/input/image.png: truncated*"),
        ({"input/table.csv": "a,b"}, "*test_bad/input/table.csv: no payload type reads '.csv'*"),
        ({"input/count.int": "three"}, "*test_bad/input/count.int: 'three' is not a valid integer*"),
        ({"input/meta.json": "{nope"}, "*test_bad/input/meta.json: not valid JSON*"),
        ({"input/a.int": "1", "input/a.float": "1"}, "*both a.float and a.int hold the key 'a'*"),
        ({"input/x.int": "1", "output/y.bin": "?"}, "*test_bad/output/y.bin: no payload type*"),
    ],
    ids=[
        "no-input",
        "not-an-image",
        "truncated-image",
        "unknown-extension",
        "bad-integer",
        "bad-json",
        "two-files-one-key",
        "bad-output",
    ],
)
def test_a_bad_test_folder_is_a_collection_error_naming_the_file(pytester, inputs, expected_message):
    folder = pytester.path / "pesto/tests/resources/test_bad"
    folder.mkdir(parents=True)
    for relative, content in inputs.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(content if isinstance(content, bytes) else content.encode())
    make_folder(pytester.path, "test_good", {"text.string": "a"}, {"text.string": "a"})

    result = pytester.runpytest(NOWHERE, "--collect-only", "-q", "--continue-on-collection-errors")

    result.stdout.fnmatch_lines(["*ERROR collecting pesto/tests/resources/test_bad*", expected_message])
    assert collected_ids(result) == ["pesto/tests/resources/test_good"]
    assert "Traceback" not in result.stdout.str()


def test_an_expected_describe_that_is_not_json_is_a_collection_error(pytester):
    resources = pytester.path / "pesto/tests/resources"
    resources.mkdir(parents=True)
    (resources / "expected_describe.json").write_text("{'single': 'quotes'}")

    result = pytester.runpytest(NOWHERE, "--collect-only")

    result.stdout.fnmatch_lines(["*expected_describe.json: not valid JSON*"])


# -- test folders to values -------------------------------------------------------------------
def test_digit_named_entries_are_a_list_in_numeric_order_and_others_a_dict(tmp_path):
    folder = make_folder(
        tmp_path,
        "test_1",
        {
            **{f"numbers/{index}.int": str(index) for index in (0, 1, 2, 10)},
            "meta/name.string": "cat",
            "meta/size.int": "3",
            "empty/.keep": "",
            ".DS_Store": "ignored",
        },
    )

    payload = read_folder(folder / "input", default_registry())

    assert payload == {"numbers": [0, 1, 2, 10], "meta": {"name": "cat", "size": 3}, "empty": []}


def test_images_are_sent_inline_as_base64_of_the_file(tmp_path):
    data = png_bytes([[0, 255], [255, 0]])
    folder = make_folder(tmp_path, "test_1", {"image.png": data, "frames/0.png": data})

    payload = read_folder(folder / "input", default_registry())

    assert payload == {"image": base64.b64encode(data).decode(), "frames": [payload["image"]]}


def test_an_unknown_extension_names_the_known_ones(tmp_path):
    folder = make_folder(tmp_path, "test_1", {"table.csv": "a,b"})

    with pytest.raises(PayloadError, match=r"table\.csv: .*\.png.*\.string"):
        read_folder(folder / "input", default_registry())


# -- describe normalisation -------------------------------------------------------------------
def test_describe_links_lose_their_host_and_port_and_nothing_else_changes():
    describe = {
        "title": "http://example.org:80/kept",
        "_links": {
            "self": {"relation": "Access to describe", "href": "http://127.0.0.1:41234/api/v1/describe"},
            "health": {"href": "https://svc.example:8443/api/v1/health?x=1", "method": "GET"},
        },
    }

    normalised = without_link_hosts(describe)

    assert normalised == {
        "title": "http://example.org:80/kept",
        "_links": {
            "self": {"relation": "Access to describe", "href": "http://{host}/api/v1/describe"},
            "health": {"href": "https://{host}/api/v1/health?x=1", "method": "GET"},
        },
    }
    assert without_link_hosts(json.loads(json.dumps(normalised))) == normalised
