"""The try-it page: `GET /` answers one static page that builds its form from this service.

The page (`index.html`, `page.js`, `page.css` beside this module) is the same for every
service: at run time it reads `/api/v1/describe` (title, description, version, the input and
output schemas with their defaults, bounds and required fields) and `page/fields.json`, which
says how to show each field. That table comes from the service's own payload types, so a
plugin type whose media type is an image gets a file picker and a picture like `Image` does.
Nothing is fetched from another origin and nothing is built: it works on an air-gapped cluster.

The page is served with a Content-Security-Policy that allows scripts, styles and requests
from this service only (no inline script), and the script shows every string it gets from the
service as text, never as HTML. `PESTO_PAGE=0` turns it off.
"""

import logging
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import bottle
from bottle import request, response

from pesto_pack.types.base import ListType, PayloadType
from pesto_serve.payloads import to_json_bytes

if TYPE_CHECKING:
    from pesto_serve.service import Service

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
FILES = {
    "index.html": "text/html; charset=utf-8",
    "page.js": "text/javascript; charset=utf-8",
    "page.css": "text/css; charset=utf-8",
}
PRIMITIVES = ("string", "number", "integer", "boolean")
HERE = Path(__file__).parent


def mount_page(app: bottle.Bottle, service: "Service") -> None:
    """Add `GET /` and `GET /page/<name>` to the app, and to the service's OpenAPI document
    (nothing when PESTO_PAGE turns the page off)."""
    if not service.settings.page:
        return
    try:
        documents = {name: _Document(_read(name), media) for name, media in FILES.items()}
    except OSError as error:  # a broken install must not stop the service itself
        log.warning("the page is off: its files are missing from pesto_serve/page (%s)", error)
        return
    payloads = service.payloads
    fields = {"inputs": field_kinds(payloads.input_types), "outputs": field_kinds(payloads.output_types)}
    documents["fields.json"] = _Document(to_json_bytes(fields), "application/json")

    @app.get("/")
    def page():
        return documents["index.html"].answer()

    @app.get("/page/<name>")
    def page_file(name):
        document = documents.get(name) if name != "index.html" else None
        if document is None:
            raise bottle.HTTPError(404)
        return document.answer()

    service.openapi["paths"].update(openapi_paths())


def openapi_paths() -> dict:
    """The page's routes as OpenAPI path items: the document lists every route."""
    error = {
        "description": "error",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    files = {
        media.split(";")[0]: {"schema": {"type": "string"}}
        for name, media in FILES.items()
        if name != "index.html"
    }
    files["application/json"] = {"schema": {"type": "object"}}
    return {
        "/": {
            "get": {
                "summary": "The try-it page: a form made from this service's schemas (HTML)",
                "responses": {
                    "200": {
                        "description": "the page",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/page/{name}": {
            "get": {
                "summary": "A file of the try-it page: its script, its style, how to show each field",
                "parameters": [
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "schema": {
                            "type": "string",
                            "enum": [*(n for n in FILES if n != "index.html"), "fields.json"],
                        },
                    }
                ],
                "responses": {"200": {"description": "the file", "content": files}, "404": error},
            }
        },
    }


def field_kinds(types: dict[str, PayloadType]) -> dict[str, str]:
    """How the page shows each field: `image`, `images`, `polygon`, `polygons`, a JSON
    primitive's name, or `json` (an editor for objects, arrays, `Metadata` and the rest)."""
    return {name: _kind(payload_type) for name, payload_type in types.items()}


def _kind(payload_type: PayloadType) -> str:
    if isinstance(payload_type, ListType) and payload_type.items is not None:
        item = _kind(payload_type.items)
        return item + "s" if item in ("image", "polygon") else "json"
    if payload_type.media_type.startswith("image/"):
        return "image"
    if payload_type.name == "Polygon":
        return "polygon"
    if payload_type.name in PRIMITIVES:
        return payload_type.name
    return "json"


def _read(name: str) -> bytes:
    """A file beside this module: the runtime is always installed as files (an image unpacks
    its wheel), and a plain read spares the start-up importlib.resources' imports."""
    return (HERE / name).read_bytes()


class _Document:
    """One file of the page, with its validator, answered with the security headers."""

    def __init__(self, content: bytes, media_type: str):
        self.content = content
        self.media_type = media_type
        # A checksum, not a digest: it only tells one version of a file from the next, and
        # hashlib's import (OpenSSL) would cost each start more than the whole mount.
        self.etag = f'"{zlib.crc32(content):08x}-{len(content)}"'

    def answer(self) -> bytes:
        for name, value in SECURITY_HEADERS.items():
            response.set_header(name, value)
        response.set_header("ETag", self.etag)
        if request.get_header("If-None-Match") == self.etag:
            response.status = 304
            return b""
        response.content_type = self.media_type
        return self.content
