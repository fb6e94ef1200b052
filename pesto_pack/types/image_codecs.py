"""The image codecs behind `Image`: bytes to (C, H, W) arrays and back, and comparing them.

Kept apart from `pesto_pack.types.images` so that numpy, Pillow and tifffile are imported only
when an image is first decoded, encoded or compared: every process registers the `Image` type,
and most (a service's health check, `pesto` commands) never touch an image.
"""

import io
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import tifffile
from PIL import Image as PILImage
from PIL import JpegImagePlugin, PngImagePlugin, TiffImagePlugin

from pesto_pack.errors import PayloadError
from pesto_pack.types.images import ImageFormat

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
            f"not a decodable image (PNG, JPEG or TIFF expected): {image_format} header: {error}{reason}"
        ) from None
    check_size(image.width, image.height, len(image.getbands()), max_pixels)
    _check_depth_kept(image, image_format)
    try:
        image.load()
    except _HEADER_ERRORS as error:
        raise PayloadError(
            f"truncated image: its {image_format} pixel data ends or breaks early ({error}){reason}"
        ) from None
    return pil_to_array(image)


def check_size(width: int, height: int, bands: int, max_pixels: int) -> None:
    """Refuse an image whose header claims more pixels than the limit, or more band values
    than 4 bands at the limit (a TIFF may have thousands of bands)."""
    if width * height > max_pixels:
        raise PayloadError(
            f"image is {width}x{height} pixels, over the limit of {max_pixels} (PESTO_MAX_IMAGE_PIXELS)"
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
        raise PayloadError(f"cannot encode an image of dtype {array.dtype}; use an integer or float array")
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
        raise PayloadError(f"an image array must have the shape (C, H, W) or (H, W); got {image.shape}")
    return _native(array)


# -- comparing --------------------------------------------------------------------------------


def pixel_differences(expected: np.ndarray, actual: np.ndarray, tolerance: float) -> list[str]:
    """Shape and dtype first, then (NaN equals NaN) the pixels over `tolerance` (a pixel is
    over when any of its bands is), the mean and the largest difference and where it is."""
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
        over = int((gap > tolerance).any(axis=0).sum())
        pixels = gap.shape[1] * gap.shape[2]
        differences.append(
            f"{over} of {pixels} pixels ({100 * over / pixels:.3g}%) differ by more than the "
            f"tolerance {tolerance:g}; mean difference {gap.mean():.3g}"
        )
        band, row, column = np.unravel_index(gap.argmax(), gap.shape)
        differences.append(
            f"largest pixel difference {largest:g} (band {band}, row {row}, column {column}) "
            f"is over the tolerance {tolerance:g}: {shapes}"
        )
    return differences
