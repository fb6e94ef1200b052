"""`GET /api/v1/openapi.json`: an OpenAPI 3.1 document made from this service's own schemas.

The original served one fixed file for every service. This one names this service's inputs
and outputs (the definitions become `components/schemas`), so standard tools can generate a
client or a form for it. Every route the app serves is in it; a test checks that.
"""

from typing import Any

from pesto_pack.project import ServiceApi
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
        "status": {"type": "string", "enum": ["PENDING", "RUNNING", "DONE", "ERROR"]},
        "error": {"type": ["string", "null"]},
        "link": {"type": "string", "description": "status URL (results URL once DONE)"},
        "_links": {"type": "object", "additionalProperties": {"$ref": _COMPONENTS + "Link"}},
    },
}
_RESULTS = {
    "type": "object",
    "description": "one URL per output key; a list of URLs for a list of images",
    "additionalProperties": {
        "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
    },
}
_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
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
        ("delete", "/api/v1/jobs/{job_id}", "delete", "delete the job and its results"),
    )
}
_KEY = {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}
_INDEX = {"name": "index", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}


def openapi_document(api: ServiceApi, definitions: dict[str, dict]) -> dict:
    """The document for this service: its routes, its inputs and outputs, its errors."""
    schemas = {name: _components(schema) for name, schema in definitions.items()}
    schemas["Input"] = _components(IoSchema.from_file(api.input_schema).object_schema({}))
    schemas["Output"] = _components(IoSchema.from_file(api.output_schema).object_schema({}))
    schemas["Error"] = _ERROR
    for schema in (schemas["Input"], schemas["Output"]):
        schema.pop("definitions", None)
    paths = _common_paths(api.asynchronous)
    if api.asynchronous:
        schemas.update(Link=_LINK, Job=_JOB, JobResults=_RESULTS)
        paths.update(_job_paths())
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


def _common_paths(asynchronous: bool) -> dict:
    process_answer = (
        {"202": {**_json("the job is queued; poll its status URL (also in Location)", "Job"),
                 "links": _JOB_LINKS}}
        if asynchronous
        else {"200": _json("the outputs", "Output")}
    )
    return {
        "/api/v1/health": {"get": _get("`OK` while the service runs", "text/plain")},
        "/api/v1/ready": {
            "get": _get("`OK` once on_start() has finished", "text/plain", errors=("503",))
        },
        "/api/v1/describe": {"get": _get("the service's description, inputs and outputs")},
        "/api/v1/version": {"get": _get("version.json")},
        "/api/v1/config": {"get": _get("the service's configuration (config.json)")},
        "/api/v1/openapi.json": {"get": _get("this document")},
        "/api/v1/openapi": {"get": _get("this document (the original PESTO's route)")},
        "/api/v1/process": {
            "post": {
                "summary": "Process the inputs",
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
        "/api/v1/jobs": {"get": _get("every job: its status URL and state")},
        prefix: {
            "delete": {
                "summary": "Delete a finished or waiting job and its results",
                "parameters": [_JOB_ID],
                "responses": {"200": _json("deleted"), **_error_responses("404", "409")},
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
                "one output, with its media type", "*/*", parameters=[_JOB_ID, _KEY],
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
                "one item of a list output", "*/*", parameters=[_JOB_ID, _KEY, _INDEX],
                errors=("404", "409"),
            )
        },
    }


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
