"""Write the input photos of pesto/tests/resources/test_*/ from scikit-image's bundled data.

The photos are real ones that scikit-image ships (`pip install scikit-image Pillow`), saved
the ways a user's files come: PNG, JPEG and TIFF, grayscale, with an alpha channel, with a palette,
16 bits per sample, large and small. Each folder's `output/category.string` holds the class
the model gives, checked by eye to be right for the photo (the README lists them), and
proved by `python scripts/classify_local.py --tests`.

    python scripts/make_test_photos.py     # rewrite every test folder's input and output
"""

import io
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import skimage.data
import tifffile
from PIL import Image

RESOURCES = Path(__file__).resolve().parent.parent / "pesto" / "tests" / "resources"
MAX_BYTES = 300_000


def chelsea() -> Image.Image:
    return Image.fromarray(skimage.data.chelsea())


def coffee() -> Image.Image:
    return Image.fromarray(skimage.data.coffee())


def rocket() -> Image.Image:
    return Image.fromarray(skimage.data.rocket())


def camera() -> Image.Image:
    return Image.fromarray(skimage.data.camera())


def motorcycle() -> Image.Image:
    left, _, _ = skimage.data.stereo_motorcycle()
    return Image.fromarray(left)


def jpeg(picture: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def png16(samples: np.ndarray) -> bytes:
    """A 16-bit grayscale PNG of (H, W) uint16 samples."""
    return png(Image.fromarray(samples))


def tiff16(samples: np.ndarray) -> bytes:
    """A deflate-compressed 16-bit RGB TIFF of (H, W, 3) uint16 samples.

    Not a 16-bit colour PNG: Pillow reads those at 8 bits a channel, so the toolkit refuses
    them and asks for a TIFF, which GDAL and rasterio users send anyway.
    """
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, samples, photometric="rgb", compression="zlib", predictor=True)
    return buffer.getvalue()


def resized(picture: Image.Image, width: int) -> Image.Image:
    height = round(picture.height * width / picture.width)
    return picture.resize((width, height), Image.Resampling.LANCZOS)


def with_alpha_vignette(picture: Image.Image) -> Image.Image:
    """RGBA: opaque in the middle, fading to fully transparent at the corners."""
    height, width = picture.height, picture.width
    y, x = np.mgrid[0:height, 0:width]
    distance = np.hypot((x - width / 2) / (width / 2), (y - height / 2) / (height / 2))
    alpha = np.clip((1.4 - distance) / 0.5, 0.0, 1.0)
    rgba = np.dstack([np.asarray(picture), np.round(alpha * 255).astype(np.uint8)])
    return Image.fromarray(rgba, mode="RGBA")


def to_16_bits(picture: Image.Image, width: int) -> np.ndarray:
    """Resampled in floating point, so the 16-bit samples carry more than 8 bits' detail."""
    samples = np.asarray(picture, dtype=np.float32) / 255.0
    channels = [samples] if samples.ndim == 2 else [samples[..., c] for c in range(samples.shape[2])]
    height = round(picture.height * width / picture.width)
    planes = [
        np.asarray(Image.fromarray(c, mode="F").resize((width, height), Image.Resampling.BILINEAR))
        for c in channels
    ]
    stacked = planes[0] if len(planes) == 1 else np.dstack(planes)
    return np.round(np.clip(stacked, 0.0, 1.0) * 65535).astype(np.uint16)


TESTS: dict[str, tuple[str, Callable[[], bytes], str]] = {
    # folder: (input file name, how it is made, expected category)
    "test_1": ("image.png", lambda: png(chelsea()), "Egyptian_cat"),
    "test_2": ("image.jpg", lambda: jpeg(coffee()), "espresso"),
    "test_3": ("image.jpg", lambda: jpeg(rocket()), "missile"),
    "test_4": ("image.png", lambda: png(camera()), "tripod"),
    "test_5": ("image.jpg", lambda: jpeg(resized(motorcycle(), 640)), "moped"),
    "test_6": ("image.png", lambda: png(with_alpha_vignette(chelsea())), "Egyptian_cat"),
    "test_7": ("image.png", lambda: png(coffee().quantize(256)), "espresso"),
    "test_8": ("image.tif", lambda: tiff16(to_16_bits(rocket(), 256)), "missile"),
    "test_9": ("image.png", lambda: png16(to_16_bits(camera(), 320)), "tripod"),
    "test_10": ("image.jpg", lambda: jpeg(resized(coffee(), 2000), quality=75), "espresso"),
    "test_11": ("image.png", lambda: png(resized(chelsea(), 120)), "Egyptian_cat"),
}


def main() -> int:
    too_big = []
    for folder, (name, make, category) in TESTS.items():
        data = make()
        (RESOURCES / folder / "input").mkdir(parents=True, exist_ok=True)
        (RESOURCES / folder / "output").mkdir(parents=True, exist_ok=True)
        for old in (RESOURCES / folder / "input").glob("image.*"):
            old.unlink()
        (RESOURCES / folder / "input" / name).write_bytes(data)
        (RESOURCES / folder / "output" / "category.string").write_text(category)
        print(f"{folder}/input/{name}: {len(data):>7} bytes, expects {category}")
        if len(data) > MAX_BYTES:
            too_big.append(folder)
    if too_big:
        print(f"over {MAX_BYTES} bytes: {too_big}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
