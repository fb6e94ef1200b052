"""The plugin's container lifecycle on the real engine: start, failures, Ctrl-C, crashes, keep.

Small images made from the base image stand in for services: one whose command exits, one
that never gets ready, and a static one (`python3 -m http.server` over files named like the
API's routes) that answers `ready` and `describe` and refuses `POST /api/v1/process`.
"""

import json
import textwrap

import pytest

from pytest_plugin_helpers import make_folder

pytestmark = pytest.mark.engine
pytest_plugins = ["pytester"]

LABEL = "org.pesto.test=true"
STATIC_DESCRIBE = {"name": "static", "asynchronous": False, "output": {"properties": {}}}
IMAGES = {
    "crashing": 'CMD ["sh", "-c", "echo loading the model; echo on_start failed: no weights >&2; exit 3"]',
    "sleepy": 'CMD ["sleep", "600"]',
    "static": textwrap.dedent(
        f"""\
        RUN mkdir -p /srv/api/v1 && echo OK > /srv/api/v1/ready \\
            && echo '{json.dumps(STATIC_DESCRIBE)}' > /srv/api/v1/describe
        WORKDIR /srv
        CMD ["python3", "-m", "http.server", "8080"]
        """
    ),
}


@pytest.fixture(scope="module")
def images(engine, base_image, tmp_path_factory):
    """`{kind: tag}` of the stand-in images, removed after the module."""
    tags = {}
    for kind, command in IMAGES.items():
        context = tmp_path_factory.mktemp(kind)
        (context / "Dockerfile").write_text(
            f"FROM {base_image}\nENV PATH=/usr/local/bin:/usr/bin:/bin\n{command}\n"
        )
        tags[kind] = f"pesto-plugin-test-{kind}:1"
        engine.images.build(path=str(context), tag=tags[kind], rm=True)
    yield tags
    for tag in tags.values():
        engine.images.remove(tag, force=True)


def left_running(engine, tag: str) -> list[str]:
    """Names of the plugin's containers of `tag` that still exist."""
    return [
        container.name
        for container in engine.containers.list(all=True, filters={"label": LABEL})
        if container.attrs["Config"]["Image"].endswith(tag)
    ]


def two_folders(pytester) -> None:
    make_folder(pytester.path, "test_1", {"text.string": "a"}, {"text.string": "a"})
    make_folder(pytester.path, "test_2", {"text.string": "b"}, {"text.string": "b"})


def test_a_container_that_exits_at_start_is_an_error_with_its_logs_and_is_removed(pytester, engine, images):
    two_folders(pytester)

    result = pytester.runpytest(f"--pesto-image={images['crashing']}")

    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            f"{images['crashing']} did not start: the container pesto-test-* exited with code 3;"
            " its last log lines:",
            "    loading the model",
            "    on_start failed: no weights",
        ]
    )
    assert left_running(engine, images["crashing"]) == []


def test_a_container_never_ready_is_an_error_after_the_start_timeout_and_is_removed(pytester, engine, images):
    two_folders(pytester)

    result = pytester.runpytest(f"--pesto-image={images['sleepy']}", "--pesto-start-timeout=1")

    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*was not ready within 1 s (GET /api/v1/ready)*--pesto-start-timeout*"])
    assert left_running(engine, images["sleepy"]) == []


def test_a_missing_image_says_how_to_build_it(pytester, engine):
    two_folders(pytester)

    result = pytester.runpytest("--pesto-image=pesto-no-such-image:0.0")

    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*pesto-no-such-image:0.0 is not in the container engine*pesto-pack build*"])


def test_the_container_answers_on_loopback_and_is_removed_at_the_end(pytester, engine, images):
    resources = pytester.path / "pesto/tests/resources"
    resources.mkdir(parents=True)
    (resources / "expected_describe.json").write_text(json.dumps(STATIC_DESCRIBE))
    make_folder(pytester.path, "test_1", {"text.string": "a"}, {"text.string": "a"})

    result = pytester.runpytest(f"--pesto-image={images['static']}")

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["POST /api/v1/process answered 501: *"])
    assert left_running(engine, images["static"]) == []


def test_keep_leaves_the_container_running_and_says_where(pytester, engine, images):
    two_folders(pytester)

    result = pytester.runpytest(f"--pesto-image={images['static']}", "--pesto-keep")

    kept = left_running(engine, images["static"])
    for name in kept:
        engine.containers.get(name).remove(force=True)
    assert len(kept) == 1
    result.stdout.fnmatch_lines(
        [
            f"pesto: the container {kept[0]} keeps running at http://127.0.0.1:*; remove it with `docker rm -f {kept[0]}`"
        ]
    )


def test_a_container_that_dies_during_the_session_fails_the_next_items_with_its_logs(
    pytester, engine, images
):
    two_folders(pytester)
    pytester.makeconftest(
        """
        from pesto_pack.engine import connect
        from pytest_pesto.session import pesto_run

        def pytest_runtest_call(item):
            if item.name == "test_2":
                container = connect().containers.get(pesto_run(item.config).service.container.name)
                container.kill()
                container.wait()
        """
    )

    result = pytester.runpytest(f"--pesto-image={images['static']}")

    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ pesto/tests/resources/test_2 _*",
            "POST http://127.0.0.1:*/api/v1/process: no answer (*",
            "the container pesto-test-* exited with code *; its last log lines:",
        ]
    )
    assert left_running(engine, images["static"]) == []


def test_ctrl_c_during_the_session_removes_the_container(pytester, engine, images):
    two_folders(pytester)
    pytester.makeconftest(
        """
        def pytest_runtest_call(item):
            if item.name == "test_2":
                raise KeyboardInterrupt
        """
    )

    result = pytester.runpytest(f"--pesto-image={images['static']}", no_reraise_ctrlc=True)

    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert left_running(engine, images["static"]) == []


def test_ctrl_c_while_waiting_for_the_container_removes_it(pytester, engine, images):
    two_folders(pytester)
    pytester.makeconftest(
        f"""
        import os, signal, threading, time
        from pesto_pack.engine import connect

        def interrupt_once_the_container_exists():
            engine, deadline = connect(), time.monotonic() + 120
            while time.monotonic() < deadline:
                for container in engine.containers.list(filters={{"label": {LABEL!r}}}):
                    if container.attrs["Config"]["Image"].endswith({images["sleepy"]!r}):
                        os.kill(os.getpid(), signal.SIGINT)
                        return
                time.sleep(0.1)

        def pytest_sessionstart(session):
            threading.Thread(target=interrupt_once_the_container_exists, daemon=True).start()
        """
    )

    result = pytester.runpytest_subprocess(f"--pesto-image={images['sleepy']}")

    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert left_running(engine, images["sleepy"]) == []


def test_xdist_workers_each_run_their_own_container_and_remove_it(pytester, engine, images):
    pytest.importorskip("xdist")
    seen = pytester.path / "seen"
    seen.mkdir()
    pytester.makepyfile(
        test_workers=f"""
        def test_worker_service(pesto_service_url, worker_id):
            (__import__("pathlib").Path({str(seen)!r}) / worker_id).write_text(pesto_service_url)
        """
    )

    result = pytester.runpytest(f"--pesto-image={images['static']}", "-n", "2", "--dist=each")

    result.assert_outcomes(passed=2)
    urls = {path.name: path.read_text() for path in seen.iterdir()}
    assert sorted(urls) == ["gw0", "gw1"] and urls["gw0"] != urls["gw1"]
    assert left_running(engine, images["static"]) == []
