"""`GET /api/v1/describe` and `/version`, shaped exactly as the original PESTO answers them.

Existing projects keep an `expected_describe.json` made by the original; the keys, the
`input`/`output` structure (the schema file's properties with every definition inlined) and
the `_links` must match it. Everything but the links (absolute URLs from the request's host) is
computed once.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

from pesto_pack.project import ServiceApi
from pesto_serve.schemas import DRAFT, IoSchema

# Keys copied from description.json: always (the original fails without them), then if present.
_ALWAYS = ("title", "name", "version", "family", "description", "organization", "email", "resources")
_IF_PRESENT = ("batched", "keywords", "template")
_COMPLEX_OUTPUT = "Complex type, see output in describe content for more information"


def describe_without_links(api: ServiceApi, definitions: dict[str, dict]) -> dict:
    """The describe document minus `_links`; the same for every request."""
    description = api.description
    document = {key: description.get(key) for key in _ALWAYS}
    document["asynchronous"] = api.asynchronous
    document.update({key: description[key] for key in _IF_PRESENT if key in description})
    document["config"] = api.config_schema
    document["input"] = _io_document(IoSchema.from_file(api.input_schema), definitions)
    document["output"] = _io_document(IoSchema.from_file(api.output_schema), definitions)
    return document


def with_links(document: dict, base_url: str) -> dict:
    """The describe document for a caller who reached the service at `base_url`."""
    content = document["output"].get("content")
    execution_type = content if isinstance(content, str) else _COMPLEX_OUTPUT
    return {
        **document,
        "_links": {
            "self": _link("Access to describe resource", base_url, "describe", "application/json", "GET"),
            "execution": _link("Processing resource", base_url, "process", execution_type, "POST"),
            "config": _link("Processing configuration", base_url, "config", "application/json", "GET"),
            "version": _link("Processing version", base_url, "version", "application/json", "GET"),
            "health": _link("Processing health", base_url, "health", "text/plain", "GET"),
        },
    }


def version_document(api: ServiceApi) -> dict:
    """version.json with the service's version first, as the original's build writes it."""
    return {
        "version": api.description.get("version"),
        **api.version,
        "__packaging": f"packaged with pesto-toolkit v{_toolkit_version()}",
    }


def _io_document(schema: IoSchema, definitions: dict[str, dict]) -> dict:
    extras = schema.extras
    document = {
        "$schema": extras.get("$schema", DRAFT),
        "title": extras.get("title", ""),
        "type": extras.get("type", "object"),
        "description": extras.get("description", "Expected format"),
        "definition": extras.get("definition", {}),
        "definitions": definitions,
        "properties": schema.properties,
    }
    if schema.required:
        document["required"] = list(schema.required)
    if extras.get("content"):
        document["content"] = extras["content"]
    return document


def _link(relation: str, base_url: str, route: str, media_type: str, method: str) -> dict:
    return {"relation": relation, "href": f"{base_url}/api/v1/{route}", "type": media_type, "method": method}


def _toolkit_version() -> str:
    try:
        return package_version("pesto-toolkit")
    except PackageNotFoundError:
        return "unknown"
