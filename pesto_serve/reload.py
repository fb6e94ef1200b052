"""`pesto-serve PROJECT_DIR --reload`: the service restarts when the project's code changes.

As `uvicorn --reload` does, this process only supervises: it runs the service as a child
process (the same `pesto-serve` command without `--reload`), watches `algorithm/` and
`pesto/api/` with watchfiles, and on a change stops the child (SIGTERM, as an operator would)
and starts a new one, which imports the new code. The page, `pytest --pesto-url` and any client
see the new code on the same port without a restart by hand.

When the child cannot start (a syntax error, a schema that does not load, `on_start()`
raising), its log goes to the terminal as always, and this process answers on the service's
port until the next change: `GET /` with a page that shows the end of the log and reloads
itself every few seconds (so the browser comes back to the service once the code is fixed),
every other route with the service's 503 JSON error carrying the same message.
"""

import collections
import html
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from pesto_serve.errors import error_json

log = logging.getLogger("pesto_serve.reload")

WATCHED = ("algorithm", "pesto/api")
"""The project's folders whose changes restart the service."""
LOG_LINES = 40
"""Lines of the child's log that the error page and error answers show."""
STOP_SECONDS = 15.0
"""How long a child gets to stop after SIGTERM (its own grace period is 10 s) before it is killed."""
BIND_SECONDS = 5.0
ERROR_PAGE_REFRESH_SECONDS = 2
EXIT_NO_WATCHER = 3
PR_SET_PDEATHSIG = 1
SUPERVISOR_VARIABLE = "PESTO_RELOAD_SUPERVISOR"
"""The supervisor's process id, in its children's environment."""
HINT = f"fix the code: the service restarts when a file of {' or '.join(f'{w}/' for w in WATCHED)} changes"


def supervise(project_dir: Path, host: str, port: int, arguments: Sequence[str]) -> int:
    """Run `pesto-serve ARGUMENTS` (without --reload) as a child, restarted on every change."""
    try:
        import watchfiles
    except ImportError:
        log.error("--reload needs watchfiles: pip install 'pesto-toolkit[reload]'")
        return EXIT_NO_WATCHER
    folders = [Path(project_dir) / name for name in WATCHED if (Path(project_dir) / name).is_dir()]
    if not folders:
        log.error("%s has none of %s to watch; is it a PESTO project?", project_dir, ", ".join(WATCHED))
        return EXIT_NO_WATCHER
    port = port or _free_port(host)
    command = [
        sys.executable,
        "-m",
        "pesto_serve.reload",
        *child_arguments(arguments),
        "--host",
        host,
        "--port",
        str(port),
    ]
    supervisor = Supervisor(command, host, port)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: supervisor.stopped.set())
    logging.getLogger("watchfiles").setLevel(logging.WARNING)  # its "N changes detected"
    log.info("watching %s for changes", ", ".join(str(folder) for folder in folders))
    supervisor.start_child()
    try:
        for changes in watchfiles.watch(
            *folders,
            stop_event=supervisor.stopped,
            raise_interrupt=False,
            watch_filter=watchfiles.DefaultFilter(),
        ):
            log.info("changed: %s; restarting the service", _names(changes))
            supervisor.stop_child()
            supervisor.start_child()
    finally:
        supervisor.stop_child()
        supervisor.close_error_server()
    log.info("stopped")
    return 0


def child_arguments(arguments: Sequence[str]) -> list[str]:
    """The command line without `--reload`, also when abbreviated as argparse allows (`--rel`):
    a child given it would supervise a child of its own, and so on."""
    return [
        argument
        for argument in arguments
        if not (argument.startswith("--r") and "--reload".startswith(argument))
    ]


def _names(changes: set[tuple[object, str]]) -> str:
    """The files that changed, leaving out an editor's temporary files already gone again."""
    paths = sorted({path for _change, path in changes})
    kept = [path for path in paths if Path(path).exists()] or paths
    return ", ".join(Path(path).name for path in kept)


class Supervisor:
    """The child service of the moment, or the error server that stands in for it."""

    def __init__(self, command: list[str], host: str, port: int):
        self.command = command
        self.host = host
        self.port = port
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._child: subprocess.Popen | None = None
        self._error_server: WSGIServer | None = None

    def start_child(self) -> None:
        with self._lock:
            self._close_error_server()
            # No .pyc is written for the project: one written in the same second as the next
            # edit, with the same size, would be taken as up to date by the next child.
            environment = {
                **os.environ,
                "PYTHONDONTWRITEBYTECODE": "1",
                SUPERVISOR_VARIABLE: str(os.getpid()),
            }
            child = subprocess.Popen(self.command, stderr=subprocess.PIPE, env=environment)
            self._child = child
        threading.Thread(target=self._follow, args=(child,), name="pesto-reload-child", daemon=True).start()

    def stop_child(self) -> None:
        with self._lock:
            child, self._child = self._child, None
        if child is None or child.poll() is not None:
            return
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("the service did not stop in %g s after SIGTERM: killed", STOP_SECONDS)
            child.kill()
            child.wait()

    def close_error_server(self) -> None:
        with self._lock:
            self._close_error_server()

    def _follow(self, child: subprocess.Popen) -> None:
        """Pass the child's log through, keep its end, and stand in for the child if it dies."""
        tail: collections.deque[str] = collections.deque(maxlen=LOG_LINES)
        for line in child.stderr:
            sys.stderr.buffer.write(line)
            sys.stderr.flush()
            tail.append(line.decode("utf-8", "replace").rstrip())
        status = child.wait()
        with self._lock:
            if self._child is not child or self.stopped.is_set():
                return  # stopped on purpose
            self._child = None
            log.error("the service exited with status %s; %s", status, HINT)
            message = f"the service is not running: it exited with status {status}; {HINT}"
            self._error_server = _serve_error(self.host, self.port, message, "\n".join(tail))

    def _close_error_server(self) -> None:
        if self._error_server is not None:
            self._error_server.shutdown()
            self._error_server.server_close()
            self._error_server = None


def _serve_error(host: str, port: int, message: str, log_tail: str) -> WSGIServer | None:
    """A small server on the service's port that answers why the service is down."""
    page = _error_page(message, log_tail)
    body = error_json(503, f"{message}. Its log ends with:\n{log_tail}").encode()

    def app(environ, start_response):
        headers = [("Retry-After", "1"), ("Cache-Control", "no-store")]
        if environ.get("PATH_INFO") in ("", "/") and environ.get("REQUEST_METHOD") == "GET":
            headers += [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'"),
            ]
            start_response("503 Service Unavailable", headers)
            return [page]
        start_response("503 Service Unavailable", [*headers, ("Content-Type", "application/json")])
        return [body]

    deadline = time.monotonic() + BIND_SECONDS
    while True:
        try:
            server = make_server(host, port, app, handler_class=_QuietHandler)
            break
        except OSError as error:  # the child's socket may linger for a moment
            if time.monotonic() > deadline:
                log.warning("cannot answer on %s:%s while the service is down: %s", host, port, error)
                return None
            time.sleep(0.1)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="pesto-reload-error", daemon=True
    ).start()
    return server


def _error_page(message: str, log_tail: str) -> bytes:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="{ERROR_PAGE_REFRESH_SECONDS}">
<title>The service is not running</title>
<style>body {{ font-family: system-ui, sans-serif; margin: 1rem auto; max-width: 70rem; }}
pre {{ white-space: pre-wrap; overflow-wrap: anywhere; border: 2px solid #b00020; padding: 0.5rem; }}</style>
</head>
<body>
<h1>The service is not running</h1>
<p id="reload-error">{html.escape(message)}</p>
<h2>The end of its log</h2>
<pre id="reload-log">{html.escape(log_tail)}</pre>
<p>This page reloads itself every {ERROR_PAGE_REFRESH_SECONDS} s until the service is back.</p>
</body>
</html>
""".encode()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


def _stop_with_supervisor() -> None:
    """In the child: on Linux, be sent SIGTERM when the supervisor dies (even killed with
    SIGKILL), so no service is left holding the port; and stop at once if it is already gone.
    Done here, after exec, rather than between fork and exec, which is unsafe in a process with
    threads. Elsewhere only the second check is made."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    if str(os.getppid()) != os.environ.get(SUPERVISOR_VARIABLE):
        sys.exit(0)  # the supervisor died before the line above


def _free_port(host: str) -> int:
    """A port free now, kept for every child so the service's address never changes."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


if __name__ == "__main__":  # a child: `pesto-serve ARGUMENTS` as the supervisor's child
    from pesto_serve.cli import main

    _stop_with_supervisor()
    sys.exit(main(sys.argv[1:]))
