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
import http.client
import io
import posixpath
import re
import struct
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import tifffile
from PIL import Image as PILImage
from PIL import JpegImagePlugin, PngImagePlugin, TiffImagePlugin

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
        raise PayloadError(
            "not valid base64; send the image file's bytes encoded in base64"
        ) from None


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
            opener = urllib.request.build_opener(_AllowListRedirects(allowlist))
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
    return Path(urllib.request.url2pathname(urlsplit(uri).path)).resolve()


def _read_capped(stream, uri: str) -> bytes:
    data = stream.read(MAX_FETCH_BYTES + 1)
    if len(data) > MAX_FETCH_BYTES:
        raise PayloadError(f"{uri!r} holds more than {MAX_FETCH_BYTES} bytes; refusing it")
    return data


class _AllowListRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to an allowed URI, so an allowed host cannot bounce elsewhere."""

    def __init__(self, allowlist: tuple[str, ...]):
        self.allowlist = allowlist

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if not any(is_under(newurl, prefix) for prefix in self.allowlist):
            raise PayloadError(f"refusing the redirect to {newurl!r}: not under an allowed prefix")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


# -- bytes -> array ---------------------------------------------------------------------------

_PILLOW_OPENERS: dict[str, Callable[[io.BytesIO], PILImage.Image]] = {
    # The plugin classes read the header only and skip Pillow's global bomb check, which
    # knows nothing of the service's own limit: `check_size` applies that one.
    "PNG": PngImagePlugin.PngImageFile,
    "JPEG": JpegImagePlugin.JpegImageFile,
    "TIFF": TiffImagePlugin.TiffImageFile,
}
_HEADER_ERRORS = (SyntaxError, OSError, ValueError, EOFError, struct.error, IndexError, KeyError)


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """A (C, H, W) array from encoded bytes; the size is checked before pixels are decoded."""
    image_format = ImageFormat.of(data)
    if image_format == "TIFF":
        try:
            return _decode_tiff(data, max_pixels)
        except PayloadError:
            raise
        except Exception as tifffile_error:  # of many kinds on bad data; Pillow gets a try
            reason = f" (tifffile: {tifffile_error})"
    else:
        reason = ""
    try:
        image = _PILLOW_OPENERS[image_format](io.BytesIO(data))
    except _HEADER_ERRORS as error:
        raise PayloadError(
            f"not a decodable image (PNG, JPEG or TIFF expected): {image_format} header: "
            f"{error}{reason}"
        ) from None
    check_size(image.width, image.height, len(image.getbands()), max_pixels)
    _check_depth_kept(image, image_format)
    try:
        image.load()
    except _HEADER_ERRORS as error:
        raise PayloadError(
            f"truncated image: its {image_format} pixel data ends or breaks early "
            f"({error}){reason}"
        ) from None
    return pil_to_array(image)


def check_size(width: int, height: int, bands: int, max_pixels: int) -> None:
    """Refuse an image whose header claims more pixels than the limit, or more band values
    than 4 bands at the limit (a TIFF may have thousands of bands)."""
    if width * height > max_pixels:
        raise PayloadError(
            f"image is {width}x{height} pixels, over the limit of {max_pixels} "
            "(PESTO_MAX_IMAGE_PIXELS)"
        )
    if width * height * bands > 4 * max_pixels:
        raise PayloadError(
            f"image is {width}x{height} pixels of {bands} bands, over the limit of "
            f"{4 * max_pixels} values (4 bands of PESTO_MAX_IMAGE_PIXELS pixels)"
        )


def _check_depth_kept(image: PILImage.Image, image_format: str) -> None:
    """Refuse 16-bit colour images, which Pillow would silently reduce to 8 bits a channel."""
    rawmodes = [tile[3][0] if isinstance(tile[3], tuple) else tile[3] for tile in image.tile]
    if image.mode in ("RGB", "RGBA", "LA", "CMYK") and any(";16" in str(r) for r in rawmodes):
        raise PayloadError(
            f"16-bit {image.mode} {image_format} images cannot be read without losing the low "
            "8 bits of each channel; send the image as TIFF (uncompressed or deflate)"
        )


def _decode_tiff(data: bytes, max_pixels: int) -> np.ndarray:
    """The first image of a TIFF (what rasterio reads), bands first."""
    with tifffile.TiffFile(io.BytesIO(data)) as tiff:
        page = tiff.pages[0]
        bands = page.samplesperpixel
        check_size(page.imagewidth, page.imagelength, bands, max_pixels)
        array = page.asarray()
        axes = page.axes
    if array.dtype.kind not in "buif":
        raise PayloadError(
            f"TIFF samples of type {array.dtype} are not pixel values; send integer or float bands"
        )
    if axes == "YX":
        array = array[np.newaxis]
    elif axes == "YXS":
        array = array.transpose(2, 0, 1)
    elif axes != "SYX":
        raise PayloadError(f"unsupported TIFF layout {axes!r}; expected bands of 2-D images")
    return _native(array)


def pil_to_array(image: PILImage.Image) -> np.ndarray:
    """A Pillow image as (C, H, W): palettes expanded to RGB (RGBA with transparency)."""
    if image.mode in ("P", "PA"):
        transparent = image.mode == "PA" or "transparency" in image.info
        image = image.convert("RGBA" if transparent else "RGB")
    elif image.mode == "YCbCr":
        image = image.convert("RGB")
    array = np.asarray(image)
    if array.dtype == bool:  # mode "1": rasterio reads 1-bit images as 0/1 bytes
        array = array.astype(np.uint8)
    array = array[np.newaxis] if array.ndim == 2 else array.transpose(2, 0, 1)
    return _native(array)


def _native(array: np.ndarray) -> np.ndarray:
    """A C-contiguous array in the machine's byte order (big-endian TIFFs read as such)."""
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))


# -- array -> bytes ---------------------------------------------------------------------------


PNG_BANDS = {np.dtype(np.uint8): (1, 3, 4), np.dtype(np.uint16): (1,)}
"""The band counts that a PNG written by Pillow holds, by dtype (L, RGB, RGBA; I;16)."""


def encode_image(image: Any) -> bytes:
    """PNG bytes when PNG holds the array (uint8 with 1, 3 or 4 bands, uint16 with 1), else TIFF."""
    array = channel_first(image)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    bands = array.shape[0]
    if bands in PNG_BANDS.get(array.dtype, ()):
        buffer = io.BytesIO()
        PILImage.fromarray(array[0] if bands == 1 else array.transpose(1, 2, 0)).save(buffer, "PNG")
        return buffer.getvalue()
    if array.dtype.kind not in "uif":
        raise PayloadError(
            f"cannot encode an image of dtype {array.dtype}; use an integer or float array"
        )
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer,
        array[0] if bands == 1 else array,
        photometric="minisblack",
        planarconfig="separate" if bands > 1 else None,
        compression="zlib",
    )
    return buffer.getvalue()


def channel_first(image: Any) -> np.ndarray:
    """A (C, H, W) array from what `process()` returned: an array (C, H, W) or (H, W), or Pillow."""
    if isinstance(image, PILImage.Image):
        return pil_to_array(image)
    if not isinstance(image, np.ndarray):
        raise PayloadError(
            "an image answer must be a numpy array (C, H, W) or (H, W), or a PIL image; "
            f"got {type(image).__name__}"
        )
    array = image[np.newaxis] if image.ndim == 2 else image
    if array.ndim != 3 or 0 in array.shape:
        raise PayloadError(
            f"an image array must have the shape (C, H, W) or (H, W); got {image.shape}"
        )
    return _native(array)


# -- comparing --------------------------------------------------------------------------------


def pixel_differences(expected: np.ndarray, actual: np.ndarray, tolerance: float) -> list[str]:
    """Shape, dtype and the largest pixel difference (NaN equals NaN) against `tolerance`."""
    shapes = f"expected {expected.shape} {expected.dtype}, got {actual.shape} {actual.dtype}"
    if expected.shape != actual.shape:
        return [f"image shapes differ: {shapes}"]
    differences = []
    if expected.dtype != actual.dtype:
        differences.append(f"image dtypes differ: {shapes}")
    wanted, got = expected.astype(np.float64), actual.astype(np.float64)
    with np.errstate(invalid="ignore"):
        gap = np.abs(wanted - got)
    gap[np.isnan(wanted) & np.isnan(got)] = 0
    gap[np.isnan(gap)] = np.inf
    largest = gap.max()
    if largest > tolerance:
        band, row, column = np.unravel_index(gap.argmax(), gap.shape)
        differences.append(
            f"largest pixel difference {largest:g} (band {band}, row {row}, column {column}) "
            f"is over the tolerance {tolerance:g}: {shapes}"
        )
    return differences


# -- the payload types ------------------------------------------------------------------------


class ImageType(PayloadType):
    """`Image`: a base64 string on the wire and in test files, a (C, H, W) array in `process()`."""

    def decode(self, value: JSON, settings: DecodeSettings) -> np.ndarray:
        return decode_image(image_bytes(value, settings), settings.max_image_pixels)

    def encode(self, value: Any) -> JSON:
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
