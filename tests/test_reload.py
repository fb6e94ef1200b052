"""`pesto-serve PROJECT --reload`: a change to process.py is served without a restart by hand; a
syntax error is shown in the log, by the API and on the page, and the service comes back once
it is fixed. A real supervisor process, a real child service and a real browser."""

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import browser_support
from browser_support import screenshot, wait_for
from page_support import open_page, output, run_and_wait
from pesto_serve.reload import child_arguments
from serve_support import copy_project
from subprocess_support import PESTO_SERVE, free_port

chromium = browser_support.chromium  # the session's browser (a fixture)
browser_artifacts = browser_support.browser_artifacts  # where screenshots go (a fixture)

CHANGE_SECONDS = 30.0
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
ECHO = """from algorithm.input_output import Input, Output


class Process:
    @staticmethod
    def process(input: Input) -> Output:
        return Output(text={expression}, number=input.number)
"""


def get(url: str) -> tuple[int, bytes]:
    try:
        with NO_PROXY.open(url, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url + "/api/v1/process",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with NO_PROXY.open(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_until(check, what: str, log: Path):
    """What `check()` answers once truthy (connection errors count as not yet)."""
    deadline = time.monotonic() + CHANGE_SECONDS
    while time.monotonic() < deadline:
        try:
            answer = check()
        except OSError:
            answer = None
        if answer:
            return answer
        time.sleep(0.1)
    pytest.fail(f"{what} did not happen in {CHANGE_SECONDS} s; the log:\n{log.read_text()[-4000:]}")


def answered_text(url: str) -> str | None:
    status, body = post(url, {"text": "hello"})
    return body.get("text") if status == 200 else None


def unready(url: str) -> bytes | None:
    """The body of /ready's 503, or None while it answers something else."""
    status, body = get(url + "/api/v1/ready")
    return body if status == 503 else None


def processes_serving(project: Path) -> list[int]:
    """Processes whose command line names the project (the supervisor and its child)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(project) in (entry / "cmdline").read_bytes().decode(
                errors="replace"
            ):
                found.append(int(entry.name))
        except OSError:  # it ended while we looked
            continue
    return found


@pytest.mark.slow
def start_reloading(project: Path, tmp_path: Path) -> tuple[subprocess.Popen, str, Path]:
    """`pesto-serve PROJECT --reload` on a free port: the supervisor, its URL, its log file."""
    port = free_port()
    log = tmp_path / "reload.log"
    with log.open("wb") as output_file:
        supervisor = subprocess.Popen(
            [str(PESTO_SERVE), str(project), "--reload", "--port", str(port)],
            stdout=output_file,
            stderr=subprocess.STDOUT,
        )
    return supervisor, f"http://127.0.0.1:{port}", log


def test_reload_serves_the_new_code_shows_a_syntax_error_and_comes_back(
    chromium, browser_artifacts, tmp_path
):
    project = copy_project("echo", tmp_path)
    process_py = project / "algorithm" / "process.py"
    process_py.write_text(ECHO.format(expression="input.text"))
    supervisor, url, log = start_reloading(project, tmp_path)
    try:
        assert wait_until(lambda: answered_text(url), "the first start", log) == "hello"

        process_py.write_text(ECHO.format(expression="input.text.upper()"))
        wait_until(lambda: answered_text(url) == "HELLO", "serving the edited process.py", log)
        open_page(chromium, url)
        chromium.find_element("xpath", "//label[span[text()='text']]/following-sibling::input").send_keys(
            "page"
        )
        run_and_wait(chromium)
        assert output(chromium, "text").find_element("tag name", "output").text == "PAGE"

        process_py.write_text(ECHO.format(expression="input.text.upper(").replace("number=", "number=="))
        body = wait_until(lambda: unready(url), "the syntax error's answer", log)
        message = json.loads(body)["error"]["message"]
        assert "SyntaxError" in message and "process.py" in message
        assert "restarts when a file of algorithm/ or pesto/api/ changes" in message
        chromium.get(url + "/")
        shown = wait_for(chromium, lambda d: d.find_elements("id", "reload-log"), message="no error page")[0]
        assert "SyntaxError" in shown.text
        screenshot(chromium, browser_artifacts, "reload-syntax-error")
        assert "SyntaxError" in log.read_text()

        process_py.write_text(ECHO.format(expression='input.text.upper() + "!"'))
        wait_until(lambda: answered_text(url) == "HELLO!", "coming back once fixed", log)
        # The error page reloads itself: the browser is back on the service's page.
        wait_for(
            chromium,
            lambda d: d.find_elements("id", "inputs") and d.find_element("id", "inputs").is_displayed(),
            timeout=CHANGE_SECONDS,
            message="the error page never came back to the service's page",
        )
        screenshot(chromium, browser_artifacts, "reload-back")

        description = project / "pesto" / "api" / "description.json"
        description.write_text(description.read_text().replace('"title": "echo"', '"title": "echo, renamed"'))
        wait_until(
            lambda: json.loads(get(url + "/api/v1/describe")[1]).get("title") == "echo, renamed",
            "serving the edited pesto/api/description.json",
            log,
        )
        open_page(chromium, url)
        assert chromium.find_element("id", "title").text == "echo, renamed"
    finally:
        supervisor.send_signal(signal.SIGTERM)
        try:
            status = supervisor.wait(30)
        except subprocess.TimeoutExpired:
            supervisor.kill()
            raise
        left = processes_serving(project)
        for pid in left:  # never leave a service running, even when the test fails
            os.kill(pid, signal.SIGKILL)
    assert status == 0, log.read_text()[-3000:]
    assert not left, "the supervisor left its child running"
    with pytest.raises(OSError):
        get(url + "/api/v1/health")


def test_the_service_stops_when_its_supervisor_is_killed(tmp_path):
    project = copy_project("echo", tmp_path)
    supervisor, url, log = start_reloading(project, tmp_path)
    try:
        wait_until(lambda: answered_text(url), "the first start", log)
        children = [pid for pid in processes_serving(project) if pid != supervisor.pid]
        assert children, "no child service found"
        supervisor.kill()
        supervisor.wait(10)
        wait_until(lambda: not processes_serving(project), "the child stopping with its supervisor", log)
    finally:
        supervisor.kill()
        supervisor.wait(10)
        for pid in processes_serving(project):  # only if the behaviour under test failed
            os.kill(pid, signal.SIGKILL)


def test_the_child_is_never_given_reload_even_abbreviated():
    given = ["project", "--rel", "-p", "stateful", "--reload", "--port", "0", "--r"]
    assert child_arguments(given) == ["project", "-p", "stateful", "--port", "0"]
