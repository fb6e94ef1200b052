"""A small HTTP client of a PESTO service: what the test items and users' own tests call.

Standard library only (urllib), so that testing a running service with `--pesto-url` needs
nothing beyond pytest. Stateless and stateful services answer `process()` the same way: for
a stateful one the client submits the job, polls its status and fetches each result, turning
each result document back into the value a stateless service would have answered.
"""

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from pesto_pack.errors import PestoError
from pesto_pack.plugins import Registry, default_registry
from pesto_pack.types.base import PayloadType, Result

API = "/api/v1"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class RequestFailed(PestoError):
    """The service answered with an error status, or an answer that breaks the API."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class ServiceUnreachable(RequestFailed):
    """Nothing answers at the service's address (not started, crashed, wrong URL)."""


class JobFailed(RequestFailed):
    """A stateful job ended in ERROR, or did not end within the timeout."""


class PestoClient:
    """Calls one service. `timeout` bounds each request and each wait for a job, in seconds."""

    def __init__(self, base_url: str, timeout: float = 300.0, registry: Registry | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.registry = registry or default_registry()
        self._describe: dict | None = None
        host = urllib.parse.urlsplit(self.base_url).hostname
        # A proxy from the environment must not capture a service on this machine.
        handlers = [urllib.request.ProxyHandler({})] if host in LOOPBACK_HOSTS else []
        self._opener = urllib.request.build_opener(*handlers)

    # -- the API ---------------------------------------------------------------------------
    def ready(self) -> bool:
        """True once the service has finished `on_start()` and serves requests."""
        try:
            return self.request("GET", f"{API}/ready", timeout=min(self.timeout, 2.0))[0] == 200
        except RequestFailed:
            return False

    def describe(self, refresh: bool = False) -> dict:
        """`GET /api/v1/describe` (kept after the first call unless `refresh`)."""
        if self._describe is None or refresh:
            self._describe = self.get_json(f"{API}/describe")
        return self._describe

    @property
    def asynchronous(self) -> bool:
        return bool(self.describe().get("asynchronous", False))

    def process(self, payload: dict) -> dict:
        """The answer to `payload`; a stateful service's job is submitted, awaited and fetched."""
        if self.asynchronous:
            job_id = self.submit(payload)
            self.wait(job_id)
            return self.results(job_id)
        return self._json_of("POST", f"{API}/process", payload, expected=(200,))

    def submit(self, payload: dict) -> str:
        """Start a stateful job; its id."""
        answer = self._json_of("POST", f"{API}/process", payload, expected=(200, 201, 202))
        if not isinstance(answer, dict) or "jobId" not in answer:
            raise RequestFailed(
                f"POST {API}/process answered {_short(answer)} without a `jobId`: is the service "
                "stateful (describe says `asynchronous: true`)?"
            )
        return str(answer["jobId"])

    def status(self, job_id: str) -> dict:
        """`{"jobId", "status": PENDING|RUNNING|DONE|ERROR|CANCELLED, "error", "progress", ...}`."""
        return self.get_json(f"{API}/jobs/{job_id}/status")

    def wait(self, job_id: str, timeout: float | None = None) -> dict:
        """Poll the job's status until DONE; JobFailed on ERROR, CANCELLED or past `timeout`."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        delay = 0.005
        while True:
            status = self.status(job_id)
            state = status.get("status")
            if state == "DONE":
                return status
            if state in ("ERROR", "CANCELLED"):
                raise JobFailed(f"job {job_id} ended {state}: {status.get('error') or 'no message'}")
            if time.monotonic() + delay > deadline:
                raise JobFailed(
                    f"job {job_id} is still {state} after {timeout or self.timeout:g} s; raise "
                    "the timeout (--pesto-timeout) if the process is that slow"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.25)

    def results(self, job_id: str) -> dict:
        """A finished job's outputs, each value as the stateless answer would hold it."""
        links = self.get_json(f"{API}/jobs/{job_id}/results")
        properties = self.describe().get("output", {}).get("properties", {})
        answer = {}
        for key, link in links.items():
            prop = properties.get(key, {})
            if isinstance(link, list):
                item_type = self._item_type(prop)
                answer[key] = [item_type.from_result(self.fetch_result(url)) for url in link]
            else:
                answer[key] = self.registry.type_for_property(prop).from_result(self.fetch_result(link))
        return answer

    def _item_type(self, schema_property: dict) -> PayloadType:
        """The type of one item of a list output (`Images` → `Image`; a plain array's `items`)."""
        list_type = self.registry.type_for_property(schema_property)
        return list_type.items or self.registry.type_for_property(schema_property.get("items") or {})

    def delete(self, job_id: str) -> None:
        self.request("DELETE", f"{API}/jobs/{job_id}", expected=(200, 202, 204))

    def fetch_result(self, url: str) -> Result:
        """One result document (its bytes and media type), from an absolute or relative URL."""
        status, headers, body = self.request("GET", url, expected=(200,))
        return Result(body, headers.get("Content-Type", "application/octet-stream"))

    # -- HTTP ------------------------------------------------------------------------------
    def get_json(self, path: str) -> Any:
        return self._json_of("GET", path, None, expected=(200,))

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        expected: tuple[int, ...] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, dict, bytes]:
        """One call; `body` is sent as JSON. RequestFailed when the status is not `expected`."""
        url = urllib.parse.urljoin(self.base_url + "/", path.lstrip("/")) if "://" not in path else path
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(request, timeout=timeout or self.timeout) as response:
                status, headers, content = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            status, headers, content = error.code, dict(error.headers or {}), error.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ServiceUnreachable(f"{method} {url}: no answer ({reason})") from None
        except http.client.HTTPException as error:  # something listens, but does not speak HTTP
            what = f"{type(error).__name__}: {_short(str(error).strip())}"
            raise ServiceUnreachable(
                f"{method} {url}: the answer is not HTTP ({what}); is this the service's address?"
            ) from None
        if expected is not None and status not in expected:
            raise RequestFailed(f"{method} {_path_of(url)} answered {status}: {_message_of(content)}", status)
        return status, headers, content

    def _json_of(self, method: str, path: str, body: Any, expected: tuple[int, ...]) -> Any:
        status, _, content = self.request(method, path, body, expected=expected)
        try:
            return json.loads(content)
        except ValueError:
            raise RequestFailed(
                f"{method} {path} answered {status} with a body that is not JSON: {_short(content)}",
                status,
            ) from None


def _message_of(content: bytes) -> str:
    """The error message of an error body (`{"message": ...}` or plain text)."""
    try:
        body = json.loads(content)
    except ValueError:
        return _short(content.decode("utf-8", "replace")) or "(empty body)"
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):  # the service's own error shape
            field = f"field '{error['field']}': " if error.get("field") else ""
            return f"{field}{error['message']}"
        for key in ("message", "error", "detail"):
            if body.get(key):
                return str(body[key])
    return _short(body)


def _path_of(url: str) -> str:
    return urllib.parse.urlsplit(url).path


def _short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"
