"""Test images, one per layout, and their PNG encodings, shared by the runtime, plugin and
hostile tests.

`process()` receives an image channels first, (C, H, W); a PNG file holds it channels last,
(H, W, C). Both constants hold the same pixels, so a test can say which layout it means.
"""

import base64
import io

import numpy as np
from PIL import Image

RGB_CHANNELS_FIRST = (np.arange(3 * 8 * 10) % 256).astype(np.uint8).reshape(3, 8, 10)
"""An 8x10 RGB image as `process()` gets it: (channels, height, width)."""
RGB_CHANNELS_LAST = np.ascontiguousarray(RGB_CHANNELS_FIRST.transpose(1, 2, 0))
"""The same pixels as a PNG file holds them: (height, width, channels)."""


def png_bytes(pixels_channels_last) -> bytes:
    """A (H, W) or (H, W, C) array (or nested lists) of 0-255 values as PNG file bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels_channels_last, dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def png_base64(pixels_channels_first: np.ndarray) -> str:
    """A (C, H, W) uint8 array as a base64 PNG, as a client sends an image."""
    pixels = pixels_channels_first
    channels_last = pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)
    return base64.b64encode(png_bytes(np.ascontiguousarray(channels_last))).decode()


def decode_png(value: str) -> np.ndarray:
    """A base64 PNG from an answer as (C, H, W), as `process()` would see it."""
    image = np.asarray(Image.open(io.BytesIO(base64.b64decode(value))))
    return image[np.newaxis] if image.ndim == 2 else image.transpose(2, 0, 1)
