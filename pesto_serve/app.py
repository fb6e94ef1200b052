"""The WSGI app: small bottle routes that call the `Service`, and one JSON error shape.

Every error, the service's own and bottle's (404, 405, 500), is
`{"error": {"status": ..., "field": ..., "message": ...}}` with `Content-Type: application/json`.
"""

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import bottle
from bottle import HTTPResponse, request, response

from pesto_serve.access import Observed
from pesto_serve.describe import with_links
from pesto_serve.errors import ServiceError, error_json
from pesto_serve.jobs import DONE, Job, StoredResult
from pesto_serve.page import mount_page
from pesto_serve.payloads import parse_json, to_json_bytes
from pesto_serve.service import Service

log = logging.getLogger(__name__)

API = "/api/v1"
JSON = "application/json"


def make_app(service: Service) -> Observed:
    """The service's WSGI app (`.app` is the bottle app inside, for introspection)."""
    app = bottle.Bottle()
    app.uninstall(True)  # no JSON or template plugin: routes return bytes
    app.install(_errors_as_json)
    app.default_error_handler = _bottle_error
    max_body = service.settings.max_body_bytes

    @app.get(f"{API}/health")
    def health():
        response.content_type = "text/plain; charset=utf-8"
        return b"OK"

    @app.get(f"{API}/ready")
    def ready():
        service.check_ready()
        response.content_type = "text/plain; charset=utf-8"
        return b"OK"

    @app.get(f"{API}/describe")
    def describe():
        return _json(with_links(service.describe, _base_url()))

    @app.get(f"{API}/version")
    def version():
        return _json(service.version)

    @app.get(f"{API}/config")
    def config():
        return _json(service.api.config)

    @app.get(f"{API}/openapi.json")
    @app.get(f"{API}/openapi")
    def openapi():
        return _json(service.openapi)

    @app.get("/metrics")
    def metrics():
        response.content_type = service.metrics.content_type
        return service.metrics.render()

    @app.post(f"{API}/process")
    def process():
        body = read_json_body(request.environ, max_body)
        if service.jobs is None:
            return _json(service.process_now(body))
        job = service.submit_job(body)
        document = _job_document(job, _base_url())
        response.status = 202
        response.set_header("Location", document["link"])
        return _json(document)

    if service.jobs is not None:
        _job_routes(app, service)
    mount_page(app, service.payloads, service.settings.page)
    return Observed(app, service.metrics)


def _job_routes(app: bottle.Bottle, service: Service) -> None:
    jobs = service.jobs

    def find(job_id: str) -> Job:
        job = jobs.get(job_id)
        if job is None:
            raise ServiceError(404, f"no job {job_id!r} (it never existed or was deleted)")
        return job

    def finished(job_id: str) -> Job:
        job = find(job_id)
        if job.status != DONE:
            reason = f"it failed: {job.error}" if job.error else "retry once its status is DONE"
            raise ServiceError(409, f"job {job_id} is {job.status}, it has no results; {reason}")
        return job

    def stored(job: Job, key: str) -> StoredResult | list[StoredResult]:
        if key not in job.results:
            known = ", ".join(job.results) or "none"
            raise ServiceError(404, f"job {job.id} has no result {key!r}; its results: {known}", key)
        return job.results[key]

    @app.get(f"{API}/jobs")
    def job_list():
        base = _base_url()
        return _json(
            {job.id: {"link": _status_url(base, job.id), "status": job.status} for job in jobs.all()}
        )

    @app.get(f"{API}/jobs/<job_id>/status")
    def job_status(job_id):
        return _json(_job_document(find(job_id), _base_url()))

    @app.get(f"{API}/jobs/<job_id>/results")
    def job_results(job_id):
        job = finished(job_id)
        return _json(_result_urls(job, _base_url()))

    @app.get(f"{API}/jobs/<job_id>/results/<key>")
    def job_result(job_id, key):
        job = finished(job_id)
        result = stored(job, key)
        if isinstance(result, list):
            return _json(_result_urls(job, _base_url())[key])
        return _document(jobs, job, result)

    @app.get(f"{API}/jobs/<job_id>/results/<key>/<index:int>")
    def job_result_item(job_id, key, index):
        job = finished(job_id)
        result = stored(job, key)
        if not isinstance(result, list) or not 0 <= index < len(result):
            count = len(result) if isinstance(result, list) else "no"
            raise ServiceError(404, f"result {key!r} of job {job_id} has {count} items; no item {index}", key)
        return _document(jobs, job, result[index])

    @app.delete(f"{API}/jobs/<job_id>")
    def job_delete(job_id):
        service.delete_job(find(job_id))
        return _json({"jobId": job_id, "deleted": True})

    @app.delete(f"{API}/jobs/<job_id>/results/<key>")
    def job_result_delete(job_id, key):
        job = finished(job_id)
        stored(job, key)
        jobs.delete_result(job, key)
        return _json({"jobId": job_id, "deleted": key})


def read_json_body(environ: dict, max_bytes: int) -> Any:
    """The request body as JSON, refused (413) by its Content-Length before it is read."""
    media_type = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    if media_type and media_type != JSON and not media_type.endswith("+json"):
        raise ServiceError(
            415, f"the body must be JSON sent as Content-Type: {JSON}, not {media_type}"
        )
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ServiceError(400, "the Content-Length header is not a number") from None
    if length > max_bytes:
        raise ServiceError(
            413,
            f"the body has {length} bytes, over this service's limit of {max_bytes} "
            "(PESTO_MAX_BODY_BYTES); send smaller inputs or ask the operator to raise the limit",
        )
    body = environ["wsgi.input"].read(length) if length else b""
    if not body:
        raise ServiceError(400, "the body is empty; send the inputs as a JSON object")
    return parse_json(body)


def _errors_as_json(callback: Callable) -> Callable:
    """Route plugin: a `ServiceError` or an unexpected exception becomes the JSON error shape."""

    def wrapper(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except HTTPResponse:
            raise
        except ServiceError as error:
            return HTTPResponse(
                error.to_json(), error.status, {"Content-Type": JSON, **error.headers}
            )
        except Exception:
            log.exception("unexpected error answering %s %s", request.method, request.path)
            message = "internal error of the service; its log has the details"
            return HTTPResponse(error_json(500, message), 500, {"Content-Type": JSON})

    return wrapper


def _bottle_error(error: bottle.HTTPError) -> bytes:
    """Bottle's own errors (no route, wrong method, ...) in the service's JSON shape."""
    response.content_type = JSON
    status = error.status_code
    if status == 404:
        message = f"no route {request.path}; GET {API}/openapi.json lists this service's routes"
    elif status == 405:
        allowed = error.headers.get("Allow", "")
        message = f"{request.method} is not allowed on {request.path}; allowed: {allowed}"
    elif status < 500:
        message = str(error.body)
    else:
        if error.traceback:
            log.error("bottle error %s on %s:\n%s", status, request.path, error.traceback)
        message = "internal error of the service; its log has the details"
    return error_json(status, message).encode()


def _json(value: Any) -> bytes:
    response.content_type = JSON
    return to_json_bytes(value)


def _document(jobs, job: Job, stored: StoredResult) -> bytes:
    result = jobs.read(job, stored)
    response.content_type = result.media_type
    return result.content


def _base_url() -> str:
    parts = request.urlparts
    return f"{parts.scheme}://{parts.netloc}"


def _status_url(base: str, job_id: str) -> str:
    return f"{base}{API}/jobs/{job_id}/status"


def _job_document(job: Job, base: str) -> dict:
    """A job's state with its links; `link` is what the original's clients read."""
    status_url = _status_url(base, job.id)
    results_url = f"{base}{API}/jobs/{job.id}/results"
    return {
        "jobId": job.id,
        "status": job.status,
        "error": job.error,
        "link": results_url if job.status == DONE else status_url,
        "_links": {"status": {"href": status_url}, "results": {"href": results_url}},
    }


def _result_urls(job: Job, base: str) -> dict:
    prefix = f"{base}{API}/jobs/{job.id}/results"
    urls = {}
    for key, result in job.results.items():
        url = f"{prefix}/{quote(key, safe='')}"
        urls[key] = [f"{url}/{i}" for i in range(len(result))] if isinstance(result, list) else url
    return urls
