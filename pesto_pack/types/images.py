"""`Image` and `Images`: base64 PNG, JPEG or TIFF in requests, numpy arrays in `process()`.

Arrays are channel-first (C, H, W), as the original PESTO read images with rasterio: a
grayscale image is (1, H, W), RGB (3, H, W), RGBA (4, H, W); 16-bit stays uint16. PNG and
JPEG are read with Pillow; TIFF with tifffile, which reads what GDAL writes (any number of
bands, any integer or float type), falling back to Pillow for the compressions tifffile cannot
decode on its own (LZW, JPEG). Answers are PNG when PNG holds the array, TIFF otherwise.

Not read: 16-bit colour PNGs (Pillow keeps 8 bits a channel: refused, not degraded); TIFFs
compressed with LZW or JPEG whose bands Pillow cannot hold (more than 4, float or 16-bit
colour: tifffile needs the `imagecodecs` package for those codecs); of a multi-page TIFF, the
pages after the first (rasterio reads the first too).

A value that is a URI (`file://`, `https://`, any `scheme://`) is opened only when it falls
under one of the operator's allowed prefixes (`DecodeSettings.uri_allowlist`): the original
opened any URI a caller sent, so a request could read the container's files or reach
internal hosts.
"""

import base64
import binascii
import functools
import http.client
import posixpath
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pesto_pack.errors import PayloadError
from pesto_pack.hookspecs import hookimpl
from pesto_pack.types.base import (
    JSON,
    DecodeSettings,
    ListType,
    PayloadType,
    Result,
    Tolerance,
    json_type_name,
)

IMAGE_DEFINITION = {
    "$schema": "http://json-schema.org/draft-06/schema#",
    "description": "Image to process : it can be an url or the raw bytes encoded in base64",
    "type": "string",
}
IMAGES_DEFINITION = {"type": "array", "items": {"$ref": "#/definitions/Image"}}

FETCH_TIMEOUT_SECONDS = 30
MAX_FETCH_BYTES = 200 * 1024 * 1024
"""An allowed URI's content larger than this is refused (the request body limit's default)."""


class ImageFormat:
    """What the first bytes of an encoded image say it is."""

    SIGNATURES = {
        b"\x89PNG\r\n\x1a\n": "PNG",
        b"\xff\xd8\xff": "JPEG",
        b"II*\x00": "TIFF",
        b"MM\x00*": "TIFF",
        b"II+\x00": "TIFF",  # BigTIFF
        b"MM\x00+": "TIFF",
    }
    MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "TIFF": "image/tiff"}
    SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "TIFF": ".tif"}

    @classmethod
    def of(cls, data: bytes) -> str:
        for signature, name in cls.SIGNATURES.items():
            if data.startswith(signature):
                return name
        raise PayloadError("not a decodable image (PNG, JPEG or TIFF expected)")


# -- request value -> bytes -------------------------------------------------------------------

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_DATA_URI = re.compile(r"^data:[\w/+.-]*;base64,")


def image_bytes(value: JSON, settings: DecodeSettings) -> bytes:
    """The encoded image a request value holds: base64 (a data URI's too) or an allowed URI."""
    if not isinstance(value, str):
        raise PayloadError(f"an image is a base64 string, got {json_type_name(value)}")
    if _URI.match(value):
        return fetch(value, settings.uri_allowlist)
    text = _DATA_URI.sub("", value, count=1)
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise PayloadError("not valid base64; send the image file's bytes encoded in base64") from None


def fetch(uri: str, allowlist: tuple[str, ...]) -> bytes:
    """The content at an allowed `file://` or `http(s)://` URI, at most MAX_FETCH_BYTES."""
    if not any(is_under(uri, prefix) for prefix in allowlist):
        allowed = ", ".join(allowlist) or "none"
        raise PayloadError(
            f"refusing to open {uri!r}: the service opens only URIs under its allowed prefixes "
            f"(PESTO_URI_ALLOWLIST: {allowed}); send the image as base64 instead"
        )
    scheme = urlsplit(uri).scheme.lower()
    try:
        if scheme == "file":
            with open(_file_path(uri), "rb") as stream:
                return _read_capped(stream, uri)
        if scheme in ("http", "https"):
            import urllib.request  # on first use: a service starts without it

            opener = urllib.request.build_opener(_redirects_class()(allowlist))
            with opener.open(uri, timeout=FETCH_TIMEOUT_SECONDS) as response:
                return _read_capped(response, uri)
    except (OSError, ValueError, http.client.HTTPException) as error:  # URLError is an OSError
        raise PayloadError(f"cannot read {uri!r}: {error}") from None
    raise PayloadError(f"{scheme}:// URIs are not supported; use file://, http:// or https://")


def is_under(uri: str, prefix: str) -> bool:
    """Whether `uri` is `prefix` or below it, after resolving `..` (and, for files, symlinks)."""
    target, base = urlsplit(uri), urlsplit(prefix)
    if (target.scheme.lower(), target.netloc.lower()) != (base.scheme.lower(), base.netloc.lower()):
        return False
    if target.scheme.lower() == "file":
        return _file_path(uri).is_relative_to(_file_path(prefix))
    path = posixpath.normpath(unquote(target.path) or "/")
    base_path = posixpath.normpath(unquote(base.path) or "/")
    return path == base_path or path.startswith(base_path.rstrip("/") + "/")


def _file_path(uri: str) -> Path:
    from urllib.request import url2pathname  # on first use: a service starts without it

    return Path(url2pathname(urlsplit(uri).path)).resolve()


def _read_capped(stream, uri: str) -> bytes:
    data = stream.read(MAX_FETCH_BYTES + 1)
    if len(data) > MAX_FETCH_BYTES:
        raise PayloadError(f"{uri!r} holds more than {MAX_FETCH_BYTES} bytes; refusing it")
    return data


@functools.cache
def _redirects_class() -> type:
    """The redirect handler of `fetch`, made on first use (urllib.request is a few ms of a
    service's start, and most services never fetch a URI)."""
    import urllib.request

    class AllowListRedirects(urllib.request.HTTPRedirectHandler):
        """Follows a redirect only to an allowed URI, so an allowed host cannot bounce elsewhere."""

        def __init__(self, allowlist: tuple[str, ...]):
            self.allowlist = allowlist

        def redirect_request(self, req, fp, code, msg, headers, newurl):
            if not any(is_under(newurl, prefix) for prefix in self.allowlist):
                raise PayloadError(f"refusing the redirect to {newurl!r}: not under an allowed prefix")
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    return AllowListRedirects


# -- bytes <-> array: in image_codecs, imported on first use (numpy, Pillow, tifffile) ---------

_CODEC_NAMES = frozenset(
    {
        "decode_image", "check_size", "pil_to_array", "encode_image", "channel_first",
        "pixel_differences", "PNG_BANDS",
    }
)  # fmt: skip


def __getattr__(name: str) -> Any:
    """The codecs' public names, still importable from here, imported when first asked for."""
    if name in _CODEC_NAMES:
        from pesto_pack.types import image_codecs

        return getattr(image_codecs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- the payload types ------------------------------------------------------------------------


class ImageType(PayloadType):
    """`Image`: a base64 string on the wire and in test files, a (C, H, W) array in `process()`."""

    def decode(self, value: JSON, settings: DecodeSettings) -> Any:  # a numpy (C, H, W) array
        from pesto_pack.types.image_codecs import decode_image

        return decode_image(image_bytes(value, settings), settings.max_image_pixels)

    def encode(self, value: Any) -> JSON:
        from pesto_pack.types.image_codecs import encode_image

        return base64.b64encode(encode_image(value)).decode("ascii")

    def to_result(self, value: JSON) -> Result:
        data = image_bytes(value, DecodeSettings())
        return Result(data, ImageFormat.MEDIA_TYPES[ImageFormat.of(data)])

    def from_result(self, result: Result) -> JSON:
        return base64.b64encode(result.content).decode("ascii")

    def read_file(self, path: Path) -> JSON:
        """The file's bytes in base64, as a client sends an image."""
        return base64.b64encode(path.read_bytes()).decode("ascii")

    def write_file(self, value: JSON, stem: Path) -> Path:
        """The answer's image bytes as they are, named `.png`, `.jpg` or `.tif` by their format."""
        data = image_bytes(value, DecodeSettings())
        path = stem.with_name(stem.name + ImageFormat.SUFFIXES[ImageFormat.of(data)])
        path.write_bytes(data)
        return path

    def compare(self, expected: JSON, actual: JSON, tolerance: Tolerance) -> list[str]:
        arrays = []
        for role, value in (("expected", expected), ("actual", actual)):
            try:
                arrays.append(self.decode(value, DecodeSettings()))
            except PayloadError as error:
                return [f"the {role} image cannot be decoded: {error}"]
        from pesto_pack.types.image_codecs import pixel_differences

        return pixel_differences(*arrays, tolerance.pixel)


IMAGE = ImageType(
    "Image",
    definition=IMAGE_DEFINITION,
    extensions=(".png", ".jpg", ".jpeg", ".tif", ".tiff"),
    media_type="image/png",
)
IMAGES = ListType("Images", definition=IMAGES_DEFINITION, items=IMAGE)


@hookimpl
def register_payload_types(register: Callable[[PayloadType], None]) -> None:
    register(IMAGE)
    register(IMAGES)
