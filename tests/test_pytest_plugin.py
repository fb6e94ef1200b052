"""The pytest plugin against real services: `pesto-serve` of the fixture projects.

`mirror` answers every input it is sent unchanged, so a test folder whose output/ equals its
input/ passes and any change to output/ is a difference the plugin must report.
"""

import json
import os
import shutil
import subprocess
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from images_support import RGB_CHANNELS_LAST as RGB
from images_support import png_bytes
from pytest_plugin_helpers import PROJECTS, every_file_type, make_folder, same
from subprocess_support import PESTO_SERVE, free_port, pesto_serve_url

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def mirror():
    with pesto_serve_url(PROJECTS / "mirror") as url:
        yield url


@pytest.fixture(scope="module")
def mirror_stateful():
    with pesto_serve_url(PROJECTS / "mirror", "stateful") as url:
        yield url


@pytest.fixture(params=["stateless", "stateful"])
def any_mirror(request):
    """The mirror service, stateless and then stateful: the same items serve both."""
    return request.getfixturevalue("mirror" if request.param == "stateless" else "mirror_stateful")


def run(pytester, url: str, *args: str):
    return pytester.runpytest(f"--pesto-url={url}", "-p", "no:randomly", *args)


# -- passing and failing folders ------------------------------------------------------------
def test_every_file_type_round_trips_through_a_stateless_and_a_stateful_service(pytester, any_mirror):
    make_folder(pytester.path, "test_every_type", *same(every_file_type()))
    make_folder(
        pytester.path,
        "test_other_extensions",
        *same({"text.txt": "b", "count.integer": "4", "ratio.number": "0.5", "flag.boolean": "false"}),
    )

    result = run(pytester, any_mirror, "-v")

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*pesto/tests/resources/test_every_type PASSED*"])


def test_a_differing_answer_fails_with_each_difference_and_the_passing_folder_passes(pytester, mirror):
    make_folder(pytester.path, "test_1", *same({"text.string": "a", "count.int": "1"}))
    make_folder(
        pytester.path,
        "test_2",
        {"text.string": "a", "count.int": "1", "meta.json": '{"a": 1, "b": [1, 2]}', "flag.bool": "true"},
        {"text.string": "b", "count.int": "1", "meta.json": '{"a": 2, "b": [1, 2, 3]}', "ratio.float": "1"},
    )

    result = run(pytester, mirror)

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ pesto/tests/resources/test_2 _*",
            "the answer to pesto/tests/resources/test_2/input/ differs from pesto/tests/resources/test_2/output/:",
            "  meta['a']: expected 2, got 1",
            "  meta['b'][2]: missing (expected 3)",
            "  text: expected 'b', got 'a'",
            "  missing from the answer: ratio",
            "  in the answer but not in pesto/tests/resources/test_2/output/: flag",
            "the whole actual answer is saved in pesto/tests/resources/test_2/actual/",
            "*pytest --pesto-update*",
        ]
    )
    assert "Traceback" not in result.stdout.str() and "pytest_pesto" not in result.stdout.str()
    saved = pytester.path / "pesto/tests/resources/test_2/actual"
    assert sorted(p.name for p in saved.iterdir()) == ["count.int", "flag.bool", "meta.json", "text.string"]


def test_an_image_difference_reports_shape_dtype_and_largest_pixel_difference(pytester, mirror):
    brighter = RGB.copy()
    brighter[1, 2, 0] += 5
    make_folder(
        pytester.path, "test_pixels", {"image.png": png_bytes(RGB)}, {"image.png": png_bytes(brighter)}
    )
    make_folder(pytester.path, "test_shape", {"image.png": png_bytes(RGB)}, {"image.png": png_bytes(RGB[:2])})

    result = run(pytester, mirror)

    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*image: largest pixel difference 5 (band 0, row 1, column 2) is over the tolerance 0:"
            " expected (3, 8, 10) uint8, got (3, 8, 10) uint8",
            "*image: image shapes differ: expected (3, 2, 10) uint8, got (3, 8, 10) uint8",
        ]
    )
    saved = pytester.path / "pesto/tests/resources/test_pixels/actual/image.png"
    assert np.array_equal(np.asarray(Image.open(saved)), RGB)


def test_lists_are_compared_item_by_item_and_dict_folders_as_objects(pytester, mirror):
    make_folder(
        pytester.path,
        "test_folders",
        *same({"meta/name.string": "cat", "meta/size.int": "3", "metas/0.json": "{}", "metas/1.json": "{}"}),
    )
    make_folder(
        pytester.path,
        "test_item_count",
        {"images/0.png": png_bytes(RGB), "images/1.png": png_bytes(RGB)},
        {"images/0.png": png_bytes(RGB)},
    )

    result = run(pytester, mirror)

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*images:*expected 1*got 2*"])


# -- tolerances -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "ini", "outcome"),
    [
        ((), "", {"failed": 1}),
        (("--pesto-tolerance=0.01",), "", {"passed": 1}),
        ((), "pesto_tolerance = 0.01", {"passed": 1}),
        (("--pesto-tolerance=0.0001",), "pesto_tolerance = 0.01", {"failed": 1}),
    ],
    ids=["default", "option", "ini", "option-over-ini"],
)
def test_numbers_differ_within_the_tolerance(pytester, mirror, options, ini, outcome):
    make_folder(
        pytester.path,
        "test_1",
        {"ratio.float": "0.25", "meta.json": '{"x": 1.0}'},
        {"ratio.float": "0.251", "meta.json": '{"x": 1.001}'},
    )
    pytester.makeini(f"[pytest]\n{ini}\n")

    run(pytester, mirror, *options).assert_outcomes(**outcome)


@pytest.mark.parametrize(("tolerance", "outcome"), [("4", "failed"), ("5", "passed")])
def test_pixels_differ_within_the_pixel_tolerance(pytester, mirror, tolerance, outcome):
    brighter = RGB.copy()
    brighter[0, 0, 1] += 5
    make_folder(pytester.path, "test_1", {"image.png": png_bytes(RGB)}, {"image.png": png_bytes(brighter)})

    run(pytester, mirror, f"--pesto-pixel-tolerance={tolerance}").assert_outcomes(**{outcome: 1})


# -- --pesto-update -------------------------------------------------------------------------
def test_update_rewrites_what_differs_and_the_next_run_passes(pytester, mirror):
    folder = make_folder(
        pytester.path,
        "test_1",
        {"text.string": "new", "count.int": "2", "image.png": png_bytes(RGB), "flag.bool": "true"},
        {"text.string": "old", "count.int": "2", "image.png": png_bytes(RGB[:2]), "ratio.float": "1"},
    )
    untouched = (folder / "output/count.int").stat().st_mtime_ns

    result = run(pytester, mirror, "--pesto-update")

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*pesto: 4 expected file(s) updated*",
            "  pesto/tests/resources/test_1/output/*",
            "*pesto/tests/resources/test_1/output/ratio.float (removed)*",
        ]
    )
    output = folder / "output"
    assert sorted(p.name for p in output.iterdir()) == ["count.int", "flag.bool", "image.png", "text.string"]
    assert (output / "text.string").read_text() == "new"
    assert (output / "count.int").stat().st_mtime_ns == untouched
    assert np.array_equal(np.asarray(Image.open(output / "image.png")), RGB)
    assert not (folder / "actual").exists()
    run(pytester, mirror).assert_outcomes(passed=1)


def test_a_folder_without_output_fails_until_update_records_the_answer(pytester, mirror):
    folder = make_folder(pytester.path, "test_new", {"text.string": "x", "images/0.png": png_bytes(RGB)})

    run(pytester, mirror).stdout.fnmatch_lines(["*test_new/output is missing*--pesto-update*"])
    run(pytester, mirror, "--pesto-update").assert_outcomes(passed=1)

    assert (folder / "output/text.string").read_text() == "x"
    assert (folder / "output/images/0.png").is_file()
    run(pytester, mirror).assert_outcomes(passed=1)


# -- describe ---------------------------------------------------------------------------------
def describe_of(url: str) -> dict:
    from pesto_pack.client import PestoClient

    return PestoClient(url).describe()


def test_describe_ignores_the_host_and_port_of_links_and_nothing_else(pytester, mirror):
    resources = pytester.path / "pesto/tests/resources"
    resources.mkdir(parents=True)
    expected = describe_of(mirror)
    for link in expected["_links"].values():
        link["href"] = link["href"].replace(mirror, "http://localhost:4000")
    (resources / "expected_describe.json").write_text(json.dumps(expected))

    run(pytester, mirror).assert_outcomes(passed=1)

    expected["title"] = "another title"
    expected["_links"]["self"]["href"] = "http://localhost:4000/api/v1/elsewhere"
    (resources / "expected_describe.json").write_text(json.dumps(expected))
    result = run(pytester, mirror)

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "GET /api/v1/describe differs from expected_describe.json:",
            "  _links['self']['href']: expected 'http://{host}/api/v1/elsewhere', got 'http://{host}/api/v1/describe'",
            "  title: expected 'another title', got 'mirror'",
        ]
    )
    run(pytester, mirror, "--pesto-update").assert_outcomes(passed=1)
    assert json.loads((resources / "expected_describe.json").read_text())["title"] == "mirror"


def test_a_profiles_describe_file_updates_the_expected_describe_key_by_key(pytester, mirror, mirror_stateful):
    resources = pytester.path / "pesto/tests/resources"
    resources.mkdir(parents=True)
    (resources / "expected_describe.json").write_text(json.dumps(describe_of(mirror)))

    run(pytester, mirror_stateful, "--pesto-profile=stateful").assert_outcomes(failed=1)
    run(pytester, mirror_stateful, "--pesto-profile=stateful", "--pesto-update").assert_outcomes(passed=1)

    assert json.loads((resources / "expected_describe.stateful.json").read_text()) == {"asynchronous": True}
    assert json.loads((resources / "expected_describe.json").read_text())["asynchronous"] is False
    run(pytester, mirror_stateful, "--pesto-profile=stateful").assert_outcomes(passed=1)
    run(pytester, mirror).assert_outcomes(passed=1)
    run(pytester, mirror_stateful).assert_outcomes(failed=1)


# -- errors and reports -----------------------------------------------------------------------
def test_a_request_the_service_refuses_is_reported_with_its_message(pytester, mirror):
    make_folder(pytester.path, "test_1", {"shape.json": '{"type": "Polygon"}'}, {})

    result = run(pytester, mirror)

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["POST /api/v1/process answered 400: *shape*"])
    assert "Traceback" not in result.stdout.str()


def test_a_service_that_does_not_answer_is_an_error_of_every_item(pytester):
    make_folder(pytester.path, "test_1", *same({"text.string": "a"}))
    make_folder(pytester.path, "test_2", *same({"text.string": "b"}))

    result = run(pytester, "http://127.0.0.1:9")

    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        ["GET http://127.0.0.1:9/api/v1/ready: no answer (*", "is the service at http://127.0.0.1:9 running?"]
    )


def test_results_json_has_the_original_shape(pytester, mirror):
    make_folder(pytester.path, "test_1", *same({"text.string": "a", "image.png": png_bytes(RGB)}))
    make_folder(
        pytester.path,
        "test_2",
        {"text.string": "a", "image.png": png_bytes(RGB), "flag.bool": "true"},
        {"text.string": "b", "image.png": png_bytes(RGB[:2]), "count.int": "1"},
    )
    make_folder(pytester.path, "test_3", {"shape.json": "{}"}, {})
    resources = pytester.path / "pesto/tests/resources"
    (resources / "expected_describe.json").write_text(json.dumps(describe_of(mirror)))

    run(pytester, mirror, f"--pesto-results={pytester.path / 'out/results.json'}")

    results = json.loads((pytester.path / "out/results.json").read_text())
    assert results["describe"] == {"NoDifference": True}
    assert results["test_1"] == {"NoDifference": True}
    assert results["test_2"] == {
        "KeysNotExpected": ["flag"],
        "KeysMissing": ["count"],
        "KeysNotEqual": {
            "image": {
                "expected": str(resources / "test_2/output/image.png"),
                "actual": str(resources / "test_2/actual/image.png"),
                "differences": [
                    "image: image shapes differ: expected (3, 2, 10) uint8, got (3, 8, 10) uint8"
                ],
                "pictures": [
                    str(resources / "test_2/actual/image.sheet.png"),
                    str(resources / "test_2/actual/image.diff.png"),
                ],
            },
            "text": {"expected": "b", "actual": "a", "differences": ["text: expected 'b', got 'a'"]},
        },
    }
    assert list(results["test_3"]) == ["Error"] and "400" in results["test_3"]["Error"]


# -- pytest's own options ---------------------------------------------------------------------
def failing_and_passing_folders(pytester) -> None:
    make_folder(pytester.path, "test_1", *same({"text.string": "a"}))
    make_folder(pytester.path, "test_2", {"text.string": "a"}, {"text.string": "b"})
    make_folder(pytester.path, "test_3", *same({"text.string": "c"}))


def test_exitfirst_stops_at_the_first_failing_folder(pytester, mirror):
    failing_and_passing_folders(pytester)

    run(pytester, mirror, "-x").assert_outcomes(passed=1, failed=1)


def test_last_failed_runs_the_failing_folder_again_alone(pytester, mirror):
    failing_and_passing_folders(pytester)
    run(pytester, mirror).assert_outcomes(passed=2, failed=1)

    result = run(pytester, mirror, "--lf", "-v")

    result.assert_outcomes(failed=1, deselected=2)
    result.stdout.fnmatch_lines(["*pesto/tests/resources/test_2 FAILED*"])


def test_junit_xml_has_one_testcase_per_folder_with_the_readable_report(pytester, mirror):
    failing_and_passing_folders(pytester)

    run(pytester, mirror, "--junitxml=junit.xml")

    xml = (pytester.path / "junit.xml").read_text()
    for name in ("test_1", "test_2", "test_3"):
        assert f'name="pesto.tests.resources.{name}"' in xml
    assert "text: expected 'b', got 'a'" in xml


def test_the_projects_conftest_hooks_apply_to_test_folders(pytester, mirror):
    failing_and_passing_folders(pytester)
    pytester.makeconftest(
        """
        import pytest

        def pytest_runtest_setup(item):
            if item.name == "test_2":
                pytest.skip("skipped by the project's conftest.py")
        """
    )

    run(pytester, mirror).assert_outcomes(passed=2, skipped=1)


# -- fixtures for users' own tests ------------------------------------------------------------
USER_TESTS = """
def test_describe(pesto_client, pesto_service_url):
    assert pesto_service_url.startswith("http://127.0.0.1:")
    assert pesto_client.describe()["name"] == "mirror"

def test_process(pesto_client):
    assert pesto_client.process({"text": "hi", "count": 2}) == {"text": "hi", "count": 2}

def test_job_helpers(pesto_client):
    if not pesto_client.asynchronous:
        return
    job = pesto_client.submit({"ratio": 0.5})
    assert pesto_client.wait(job, timeout=30)["status"] == "DONE"
    assert pesto_client.results(job) == {"ratio": 0.5}
"""


def test_users_tests_share_the_service_through_the_client_fixtures(pytester, any_mirror):
    pytester.makepyfile(test_custom=USER_TESTS)
    make_folder(pytester.path, "test_1", *same({"text.string": "a"}))

    run(pytester, any_mirror).assert_outcomes(passed=4)


def test_the_client_fixture_skips_when_no_service_is_named(pytester):
    pytester.makepyfile(test_custom=USER_TESTS)

    result = pytester.runpytest("-rs")

    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines(
        ["*no PESTO service to test: give --pesto-image=NAME:TAG or --pesto-url=URL*"]
    )


def test_a_running_service_is_tested_without_importing_the_docker_sdk(pytester, mirror):
    make_folder(pytester.path, "test_1", *same({"text.string": "a"}))
    pytester.makepyfile(
        test_imports="""
        import sys

        def test_docker_is_not_imported(pesto_client):
            pesto_client.process({"text": "x"})
            assert "docker" not in sys.modules
        """
    )

    pytester.runpytest_subprocess(f"--pesto-url={mirror}").assert_outcomes(passed=2)


# -- pytest-xdist -----------------------------------------------------------------------------
def test_xdist_workers_share_a_running_service_and_the_controller_writes_the_results(pytester, mirror):
    pytest.importorskip("xdist")
    for index in range(6):
        make_folder(pytester.path, f"test_{index}", *same({"count.int": str(index)}))

    result = run(pytester, mirror, "-n", "2", f"--pesto-results={pytester.path / 'results.json'}")

    result.assert_outcomes(passed=6)
    results = json.loads((pytester.path / "results.json").read_text())
    assert results == {f"test_{index}": {"NoDifference": True} for index in range(6)}


# -- the template project's own folders ---------------------------------------------------------
def test_the_template_projects_test_folders_pass_against_its_service(pytester):
    shutil.copytree(PROJECTS / "template" / "pesto", pytester.path / "pesto")
    with pesto_serve_url(PROJECTS / "template") as url:
        result = run(pytester, url, "-v")

    result.assert_outcomes(passed=3)


def test_a_running_service_still_in_on_start_is_waited_for(pytester, tmp_path):
    make_folder(pytester.path, "test_1", {"mode.string": "ok"}, {"result.string": "ok", "active.int": "1"})
    port = free_port()
    command = [str(PESTO_SERVE), str(PROJECTS / "faulty"), "--port", str(port)]
    environment = {**os.environ, "FAULTY_ON_START": "sleep:2"}
    with open(tmp_path / "log", "wb") as log:
        service = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for_health(url)  # listening, and on_start() still has seconds to go
            result = run(pytester, url, "-k", "test_1")
        finally:
            service.terminate()
            service.wait(timeout=15)

    result.assert_outcomes(passed=1)


def wait_for_health(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/v1/health", timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
