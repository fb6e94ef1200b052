"""`GET /api/v1/openapi.json`: an OpenAPI 3.1 document made from this service's own schemas.

The original served one fixed file for every service. This one names this service's inputs
and outputs (the definitions become `components/schemas`), so standard tools can generate a
client or a form for it. Every route the app serves is in it; a test checks that.
"""

import re
from typing import Any

from pesto_pack.project import ServiceApi
from pesto_serve.access import MAX_CORRELATION_ID
from pesto_serve.jobs.model import MAX_IDEMPOTENCY_KEY
from pesto_serve.schemas import IoSchema

OPENAPI_VERSION = "3.1.0"
_COMPONENTS = "#/components/schemas/"

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "message"],
            "properties": {
                "status": {"type": "integer"},
                "field": {"type": ["string", "null"], "description": "the input at fault, if one is"},
                "message": {"type": "string"},
            },
        }
    },
}
_LINK = {"type": "object", "properties": {"href": {"type": "string"}}}
_JOB = {
    "type": "object",
    "required": ["jobId", "status"],
    "properties": {
        "jobId": {"type": "string"},
        "status": {"type": "string", "enum": ["PENDING", "RUNNING", "DONE", "ERROR", "CANCELLED"]},
        "error": {"type": ["string", "null"], "description": "why the job ended ERROR or CANCELLED"},
        "progress": {
            "type": ["integer", "null"],
            "minimum": 0,
            "maximum": 100,
            "description": "percent done, as process() reports it through its `progress` "
            "callback (100 once DONE; null until a first report)",
        },
        "attempts": {
            "type": "integer",
            "description": "runs started; more than 1 when the replica running it died and "
            "another one ran it again",
        },
        "created": {"type": "number", "description": "seconds since the epoch"},
        "finished": {"type": ["number", "null"], "description": "seconds since the epoch"},
        "cancelRequested": {
            "type": "boolean",
            "description": "a DELETE asked to cancel this running job: it ends CANCELLED at its "
            "next progress report or when process() returns",
        },
        "correlationId": {"type": "string", "description": "the X-Correlation-ID it was submitted with"},
        "webhook": {
            "type": "object",
            "description": "the X-Webhook-URL it was submitted with, and the delivery state",
            "properties": {
                "url": {"type": "string"},
                "state": {
                    "type": "string",
                    "enum": ["waiting", "pending", "retrying", "delivered", "failed"],
                },
                "attempts": {"type": "integer"},
                "lastError": {"type": ["string", "null"]},
                "nextAttempt": {"type": ["number", "null"]},
            },
        },
        "link": {"type": "string", "description": "status URL (results URL once DONE)"},
        "_links": {"type": "object", "additionalProperties": {"$ref": _COMPONENTS + "Link"}},
    },
}
_JOB_LIST = {
    "type": "object",
    "description": "one page of jobs, oldest first: job id → its status URL and state",
    "additionalProperties": {
        "type": "object",
        "properties": {"link": {"type": "string"}, "status": {"type": "string"}},
    },
}
_RESULTS = {
    "type": "object",
    "description": "one URL per output key; a list of URLs for a list of images",
    "additionalProperties": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
}
_JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,64}$"},
}
_CORRELATION_ID = {
    "name": "X-Correlation-ID",
    "in": "header",
    "required": False,
    "description": f"any id of the caller's (1-{MAX_CORRELATION_ID} printable ASCII characters): echoed in the "
    "answer, written in the access log; a job keeps it and its webhook sends it back",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_CORRELATION_ID, "pattern": "^[ -~]+$"},
}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "a key of the caller's (e.g. a UUID): a POST with a key used within the "
    "retention answers that job (200) instead of starting another; the same key with another "
    "body is a 409",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY, "pattern": "^[ -~]+$"},
}
_WEBHOOK_URL = {
    "name": "X-Webhook-URL",
    "in": "header",
    "required": False,
    "description": "a URL under one of the service's PESTO_WEBHOOK_ALLOWLIST prefixes, POSTed "
    "once when the job ends (a Standard Webhooks signed JSON: type job.done, job.error or "
    "job.cancelled, data: the job's status); retried with backoff when it fails",
    "schema": {"type": "string", "format": "uri"},
}
_LIMIT = {
    "name": "limit",
    "in": "query",
    "required": False,
    "description": "jobs per page",
    "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
}
_CURSOR = {
    "name": "cursor",
    "in": "query",
    "required": False,
    "description": 'the last job id of the previous page (the `Link: <...>; rel="next"` '
    "header gives the next page's URL); a 404 when it names no job (expired or deleted)",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,64}$"},
}
_ECHOED = {
    "X-Correlation-ID": {
        "description": "the request's X-Correlation-ID, when it sent one",
        "schema": {"type": "string"},
    },
}
_JOB_LINKS = {
    # What a client (or a tool such as schemathesis) can do with the job a POST answers.
    name: {
        "operationRef": "#/paths/" + path.replace("/", "~1") + f"/{method}",
        "parameters": {"job_id": "$response.body#/jobId"},
        "description": description,
    }
    for name, path, method, description in (
        ("status", "/api/v1/jobs/{job_id}/status", "get", "the job's state"),
        ("results", "/api/v1/jobs/{job_id}/results", "get", "one URL per output, once DONE"),
        (
            "delete",
            "/api/v1/jobs/{job_id}",
            "delete",
            "cancel the job (waiting or running), or delete it and its results once it ended",
        ),
    )
}
_KEY = {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}
_INDEX = {"name": "index", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}


def openapi_document(
    api: ServiceApi, definitions: dict[str, dict], webhook_prefixes: tuple[str, ...] = ()
) -> dict:
    """The document for this service: its routes, its inputs and outputs, its errors.

    `webhook_prefixes`: the webhook allow-list; the X-Webhook-URL header is described only when
    webhooks are on, and its pattern names the prefixes a URL must start with.
    """
    schemas = {name: _components(schema) for name, schema in definitions.items()}
    schemas["Input"] = _components(IoSchema.from_file(api.input_schema).object_schema({}))
    schemas["Output"] = _components(IoSchema.from_file(api.output_schema).object_schema({}))
    schemas["Error"] = _ERROR
    for schema in (schemas["Input"], schemas["Output"]):
        schema.pop("definitions", None)
    paths = _common_paths(api.asynchronous, webhook_prefixes)
    if api.asynchronous:
        schemas.update(Link=_LINK, Job=_JOB, JobResults=_RESULTS, JobList=_JOB_LIST)
        paths.update(_job_paths())
    _everywhere(paths)
    description = api.description
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": str(description.get("title") or description.get("name") or "PESTO service"),
            "version": str(description.get("version") or "0"),
            "description": str(description.get("description") or ""),
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _webhook_header(prefixes: tuple[str, ...]) -> dict:
    pattern = "^(" + "|".join(re.escape(prefix) for prefix in prefixes) + ")"
    return {**_WEBHOOK_URL, "schema": {**_WEBHOOK_URL["schema"], "pattern": pattern}}


def _common_paths(asynchronous: bool, webhook_prefixes: tuple[str, ...] = ()) -> dict:
    process_answer = (
        {
            "202": {
                **_json(
                    "the job is stored and queued; poll its status URL (also in "
                    "Location), or name an X-Webhook-URL",
                    "Job",
                ),
                "links": _JOB_LINKS,
            },
            "200": _json("the job an earlier POST with the same Idempotency-Key started", "Job"),
            **_error_responses("409"),
        }
        if asynchronous
        else {"200": _json("the outputs", "Output")}
    )
    return {
        "/api/v1/health": {"get": _get("`OK` while the service runs", "text/plain")},
        "/api/v1/ready": {"get": _get("`OK` once on_start() has finished", "text/plain", errors=("503",))},
        "/api/v1/describe": {"get": _get("the service's description, inputs and outputs")},
        "/api/v1/version": {"get": _get("version.json")},
        "/api/v1/config": {"get": _get("the service's configuration (config.json)")},
        "/api/v1/openapi.json": {"get": _get("this document")},
        "/api/v1/openapi": {"get": _get("this document (the original PESTO's route)")},
        "/api/v1/process": {
            "post": {
                "summary": "Process the inputs" + (" as a job" if asynchronous else ""),
                **(
                    {
                        "parameters": [_IDEMPOTENCY_KEY]
                        + ([_webhook_header(webhook_prefixes)] if webhook_prefixes else [])
                    }
                    if asynchronous
                    else {}
                ),
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": _COMPONENTS + "Input"}}},
                },
                "responses": {
                    **process_answer,
                    **_error_responses("400", "413", "415", "500", "503", "504"),
                },
            }
        },
        "/metrics": {"get": _get("Prometheus metrics", "text/plain")},
    }


def _job_paths() -> dict:
    prefix = "/api/v1/jobs/{job_id}"
    return {
        "/api/v1/jobs": {
            "get": _get(
                "a page of the jobs, oldest first (a Link header names the next page)",
                schema="JobList",
                parameters=[_LIMIT, _CURSOR],
                errors=("400", "404", "503"),
            )
        },
        prefix: {
            "delete": {
                "summary": "Cancel a waiting or running job; delete a finished one",
                "description": "A PENDING job never runs: it ends CANCELLED (200, the job). A "
                "RUNNING job, on whichever replica runs it, ends CANCELLED at its next progress "
                "report or when process() returns, its result discarded (202, the job with "
                "cancelRequested). A finished job is deleted with its results (200).",
                "parameters": [_JOB_ID],
                "responses": {
                    "200": {
                        "description": "a finished job deleted, or a waiting one cancelled",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {"$ref": _COMPONENTS + "Job"},
                                        {
                                            "type": "object",
                                            "required": ["jobId", "deleted"],
                                            "properties": {
                                                "jobId": {"type": "string"},
                                                "deleted": {"const": True},
                                            },
                                        },
                                    ]
                                }
                            }
                        },
                    },
                    "202": _json("cancel requested: the running job stops soon", "Job"),
                    **_error_responses("400", "404", "503"),
                },
            }
        },
        f"{prefix}/status": {
            "get": _get("the job's state", schema="Job", parameters=[_JOB_ID], errors=("404",))
        },
        f"{prefix}/results": {
            "get": _get(
                "one URL per output", schema="JobResults", parameters=[_JOB_ID], errors=("404", "409")
            )
        },
        f"{prefix}/results/{{key}}": {
            "get": _get(
                "one output, with its media type",
                "*/*",
                parameters=[_JOB_ID, _KEY],
                errors=("404", "409"),
            ),
            "delete": {
                "summary": "Delete one output of a finished job",
                "parameters": [_JOB_ID, _KEY],
                "responses": {"200": _json("deleted"), **_error_responses("404", "409")},
            },
        },
        f"{prefix}/results/{{key}}/{{index}}": {
            "get": _get(
                "one item of a list output",
                "*/*",
                parameters=[_JOB_ID, _KEY, _INDEX],
                errors=("404", "409"),
            )
        },
    }


def _everywhere(paths: dict) -> None:
    """Every operation takes X-Correlation-ID and echoes it, and is a 400 when that header is
    not valid; every job route may be a 503 (the job store unreachable)."""
    for path, item in paths.items():
        for operation in item.values():
            operation["parameters"] = [*operation.get("parameters", []), _CORRELATION_ID]
            errors = ("400", "503") if path.startswith("/api/v1/jobs") else ("400",)
            operation["responses"].update(
                {s: a for s, a in _error_responses(*errors).items() if s not in operation["responses"]}
            )
            for answer in operation["responses"].values():
                answer.setdefault("headers", {}).update(_ECHOED)


def _get(
    summary: str,
    media_type: str = "application/json",
    schema: str | None = None,
    parameters: list | None = None,
    errors: tuple[str, ...] = (),
) -> dict:
    content_schema = {"$ref": _COMPONENTS + schema} if schema else {}
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {
            "200": {"description": summary, "content": {media_type: {"schema": content_schema}}},
            **_error_responses(*errors),
        },
    }
    if parameters:
        operation["parameters"] = parameters
    return operation


def _json(description: str, schema: str | None = None) -> dict:
    content_schema = {"$ref": _COMPONENTS + schema} if schema else {"type": "object"}
    return {"description": description, "content": {"application/json": {"schema": content_schema}}}


def _error_responses(*statuses: str) -> dict:
    return {status: _json("error", "Error") for status in statuses}


def _components(schema: Any) -> Any:
    """A definition as an OpenAPI component: `$ref`s re-pointed, draft `$schema` tags dropped."""
    if isinstance(schema, dict):
        converted = {}
        for key, value in schema.items():
            if key == "$schema":
                continue
            if key == "$ref" and isinstance(value, str) and value.startswith("#/definitions/"):
                value = _COMPONENTS + value.removeprefix("#/definitions/")
            converted[key] = _components(value)
        return converted
    if isinstance(schema, list):
        return [_components(item) for item in schema]
    return schema
