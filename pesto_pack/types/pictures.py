"""Pictures of how two values differ, drawn for a person reading a failed test's report.

Imported only by the harness's side of a payload type (as `json_diff`): the runtime never
draws. numpy and Pillow, which it needs, are the image codecs' own dependencies.

The rules, the same for every image type (docs/pytest-plugin.md shows them):

- **What is shown of an image.** 1 or 2 bands: band 0 in gray (the second of 2 is alpha);
  3 or 4 bands: bands 0, 1, 2 as red, green, blue (alpha ignored); 5 or more (multispectral):
  the same false colour, bands 0, 1, 2 as red, green, blue. 8-bit values are shown as they are;
  any other type (16-bit, float, ...) is stretched linearly from the lowest to the highest
  finite value of the shown bands of both images together, so the two stay comparable; NaN
  is black.
- **The difference** is computed on every band, not only the shown ones: for each pixel, the
  largest absolute difference over the bands (NaN equals NaN; NaN against a number counts as
  infinite). Over the dimmed expected image, a pixel within the tolerance but not equal is
  blue; a pixel over the tolerance goes from red (a one-level change is plainly red) through
  yellow to white for the largest difference the type can hold (255 for 8-bit, 65535 for
  16-bit; for floats the span of both images' values), on a log scale, so that a colour means
  the same size in every picture; the largest difference is circled in cyan. Where the shapes differ, what only one image has is striped magenta.
- **Size.** A picture smaller than `MIN_SIDE` is enlarged by a whole factor (pixels stay
  sharp squares); one larger than `MAX_SIDE` is reduced by a whole factor, the difference by
  the largest value of each block, so one changed pixel of a large image still shows.
"""

import io
import math

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw

from pesto_pack.errors import PayloadError
from pesto_pack.types.base import JSON, Pictures

PNG_COMPRESSION = 3
"""zlib level of the pictures: on a 1000 x 667 photo, Pillow's default (6) took 175 ms for a
file 6 % smaller than level 3's, 56 ms; a failing run may write many."""
MIN_SIDE = 192
MAX_SIDE = 1024
NO_PICTURE_LIMIT = 2**40
"""Pixels of a test file are the project's own: their number is not limited here."""

WITHIN_TOLERANCE = (40, 110, 255)
ONLY_ONE_IMAGE = (255, 0, 255)
LARGEST_MARK = (0, 255, 255)
BACKGROUND_DIMMING = 0.3
OVER_TOLERANCE_STOPS = ((255, 0, 0), (255, 255, 0), (255, 255, 255))
"""Red for the smallest difference over the tolerance, yellow, white for the largest."""


# -- images -------------------------------------------------------------------------------------


def image_files_pictures(expected: bytes, actual: bytes, tolerance: float) -> list[Pictures]:
    """Pictures of two encoded images (PNG, JPEG, TIFF); none when one cannot be decoded."""
    from pesto_pack.types.image_codecs import decode_image

    try:
        arrays = [decode_image(data, NO_PICTURE_LIMIT) for data in (expected, actual)]
    except PayloadError:
        return []
    return [image_pictures(*arrays, tolerance)]


def image_pictures(expected: np.ndarray, actual: np.ndarray, tolerance: float) -> Pictures:
    """Expected, actual and difference pictures of two (C, H, W) arrays of any shape and type."""
    height = max(expected.shape[1], actual.shape[1])
    width = max(expected.shape[2], actual.shape[2])
    shown = displayed([expected, actual])
    gap = pixel_gap(expected, actual, (height, width))
    reduce, enlarge = scale_factors(height, width)
    pictures = [_resized(_on_canvas(rgb, height, width), reduce, enlarge) for rgb in shown]
    pooled = _block_max(gap, reduce)
    largest = float(gap.max())
    background = _dimmed(pictures[0], enlarge, pooled.shape)
    difference = _difference_rgb(pooled, background, tolerance, value_range(expected, actual))
    difference = _enlarged(difference, enlarge)
    if largest > 0:
        row, column = np.unravel_index(int(pooled.argmax()), pooled.shape)
        difference = _circled(difference, row, column, enlarge)
    return Pictures(
        expected=png(pictures[0]),
        actual=png(pictures[1]),
        difference=png(difference),
        legend=difference_legend(tolerance, largest, expected.shape != actual.shape),
    )


def displayed(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Each (C, H, W) array as an (H, W, 3) uint8 picture, by the module's band and stretch rules."""
    chosen = [array[:1] if array.shape[0] < 3 else array[:3] for array in arrays]
    if all(array.dtype in (np.uint8, np.bool_) for array in chosen):
        scaled = [array.astype(np.uint8) * (255 if array.dtype == np.bool_ else 1) for array in chosen]
    else:
        scaled = _stretched([array.astype(np.float64) for array in chosen])
    return [_channels_last_rgb(array) for array in scaled]


def _channels_last_rgb(bands: np.ndarray) -> np.ndarray:
    """(1 or 3, H, W) uint8 as (H, W, 3): one band is gray."""
    return np.repeat(bands, 3, axis=0).transpose(1, 2, 0) if bands.shape[0] == 1 else bands.transpose(1, 2, 0)


def _stretched(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Values mapped linearly to 0..255 from the lowest to the highest finite value of all."""
    finite = [array[np.isfinite(array)] for array in arrays]
    values = np.concatenate([f.ravel() for f in finite]) if any(f.size for f in finite) else np.zeros(1)
    low, high = float(values.min()), float(values.max())
    span = high - low or 1.0
    result = []
    for array in arrays:
        scaled = np.nan_to_num((array - low) / span * 255, nan=0, posinf=255, neginf=0)
        result.append(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))
    return result


def pixel_gap(expected: np.ndarray, actual: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W): each pixel's largest absolute difference over the common bands; -1 where only
    one image has the pixel (shapes differ), inf where NaN meets a number."""
    bands = min(expected.shape[0], actual.shape[0])
    rows, columns = min(expected.shape[1], actual.shape[1]), min(expected.shape[2], actual.shape[2])
    exact = all(a.dtype.kind in "uib" and a.dtype.itemsize <= 2 for a in (expected, actual))
    kind = np.float32 if exact else np.float64  # float32 holds every 8- and 16-bit value exactly
    wanted = expected[:bands, :rows, :columns].astype(kind)
    got = actual[:bands, :rows, :columns].astype(kind)
    with np.errstate(invalid="ignore"):
        each = np.abs(wanted - got)
    each[np.isnan(wanted) & np.isnan(got)] = 0
    each[np.isnan(each)] = np.inf
    gap = np.full(size, -1.0)
    gap[:rows, :columns] = each.max(axis=0)
    return gap


def scale_factors(height: int, width: int) -> tuple[int, int]:
    """(reduce, enlarge): whole factors bringing the longer side between MIN_SIDE and MAX_SIDE."""
    longest = max(height, width)
    if longest > MAX_SIDE:
        return math.ceil(longest / MAX_SIDE), 1
    return 1, math.ceil(MIN_SIDE / longest)


def _on_canvas(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """`rgb` at the top left of a (height, width) canvas, striped magenta where it has no pixel."""
    if rgb.shape[:2] == (height, width):
        return rgb
    canvas = _stripes(height, width)
    canvas[: rgb.shape[0], : rgb.shape[1]] = rgb
    return canvas


def _stripes(height: int, width: int) -> np.ndarray:
    rows, columns = np.indices((height, width))
    canvas = np.zeros((height, width, 3), np.uint8)
    canvas[(rows + columns) % 4 < 2] = ONLY_ONE_IMAGE
    return canvas


def _resized(rgb: np.ndarray, reduce: int, enlarge: int) -> np.ndarray:
    if reduce > 1:
        return np.asarray(PILImage.fromarray(rgb).reduce(reduce))
    return _enlarged(rgb, enlarge)


def _enlarged(rgb: np.ndarray, factor: int) -> np.ndarray:
    return rgb if factor == 1 else rgb.repeat(factor, axis=0).repeat(factor, axis=1)


def _block_max(gap: np.ndarray, factor: int) -> np.ndarray:
    """The largest value of each factor x factor block (edges padded with 'no pixel')."""
    if factor == 1:
        return gap
    height, width = (math.ceil(side / factor) * factor for side in gap.shape)
    padded = np.full((height, width), -1.0)
    padded[: gap.shape[0], : gap.shape[1]] = gap
    return padded.reshape(height // factor, factor, width // factor, factor).max(axis=(1, 3))


def _dimmed(expected_rgb: np.ndarray, enlarge: int, size: tuple[int, int]) -> np.ndarray:
    """The expected picture in dim gray at the difference's (unenlarged) size: where things are."""
    small = expected_rgb[::enlarge, ::enlarge] if enlarge > 1 else expected_rgb
    small = small[: size[0], : size[1]]
    gray = small.astype(np.float64).mean(axis=2) * BACKGROUND_DIMMING
    padded = np.zeros(size)
    padded[: gray.shape[0], : gray.shape[1]] = gray
    return np.repeat(padded[..., np.newaxis], 3, axis=2).astype(np.uint8)


def value_range(expected: np.ndarray, actual: np.ndarray) -> float:
    """The largest difference two images can have: their integer type's range (255 for 8-bit,
    65535 for 16-bit), or for floats the span of their finite values."""
    if all(array.dtype.kind in "uib" for array in (expected, actual)):
        ranges = [
            1 if a.dtype == np.bool_ else np.iinfo(a.dtype).max - np.iinfo(a.dtype).min
            for a in (expected, actual)
        ]
        return float(max(ranges))
    finite = np.concatenate([a[np.isfinite(a)].ravel().astype(np.float64) for a in (expected, actual)])
    return float(finite.max() - finite.min()) if finite.size else 1.0


def _difference_rgb(
    gap: np.ndarray, background: np.ndarray, tolerance: float, full_scale: float
) -> np.ndarray:
    """Colours of each pixel's difference over `background`: over the tolerance, the position
    on the ramp is the difference's on a log scale up to `full_scale` (or the largest
    difference, when larger), so a colour means the same size in every picture of a type."""
    picture = background.copy()
    picture[(gap > 0) & (gap <= tolerance)] = WITHIN_TOLERANCE
    over = gap > tolerance
    if over.any():
        finite = gap[over & np.isfinite(gap)]
        top = max(full_scale, float(finite.max()) if finite.size else 0.0, tolerance + 1)
        span = math.log1p(top - tolerance)
        with np.errstate(invalid="ignore"):
            position = np.log1p(gap[over] - tolerance) / span
        picture[over] = _colour_ramp(np.clip(np.nan_to_num(position, nan=1.0), 0, 1))
    stripes = _stripes(*gap.shape)
    picture[gap < 0] = stripes[gap < 0]
    return picture


def _colour_ramp(position: np.ndarray) -> np.ndarray:
    """Colours along OVER_TOLERANCE_STOPS for positions in 0..1."""
    stops = np.array(OVER_TOLERANCE_STOPS, dtype=np.float64)
    scaled = position * (len(stops) - 1)
    index = np.minimum(scaled.astype(int), len(stops) - 2)
    fraction = (scaled - index)[:, np.newaxis]
    return np.rint(stops[index] * (1 - fraction) + stops[index + 1] * fraction).astype(np.uint8)


def _circled(rgb: np.ndarray, row: int, column: int, enlarge: int) -> np.ndarray:
    image = PILImage.fromarray(rgb)
    centre_y, centre_x = (row + 0.5) * enlarge, (column + 0.5) * enlarge
    radius = enlarge * 0.7 + 6  # around the (enlarged) pixel, not on it
    ImageDraw.Draw(image).ellipse(
        (centre_x - radius, centre_y - radius, centre_x + radius, centre_y + radius),
        outline=LARGEST_MARK,
        width=2,
    )
    return np.asarray(image)


def difference_legend(tolerance: float, largest: float, shapes_differ: bool) -> str:
    parts = [
        "dim gray: equal",
        f"blue: within the tolerance {tolerance:g}",
        "red to yellow to white: over it, small to large (log scale)"
        + (f", the largest ({largest:g}) circled" if largest > 0 else ""),
    ]
    if shapes_differ:
        parts.append("magenta stripes: in one image only")
    return "; ".join(parts)


def png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(rgb)).save(buffer, "PNG", compress_level=PNG_COMPRESSION)
    return buffer.getvalue()


# -- GeoJSON polygons ---------------------------------------------------------------------------

OUTLINE_SIDE = 480
OUTLINE_MARGIN = 24
EXPECTED_COLOUR = (0, 150, 60)
ACTUAL_COLOUR = (220, 0, 120)
EXPECTED_ONLY_FILL = (190, 235, 200)
ACTUAL_ONLY_FILL = (250, 200, 225)
BOTH_FILL = (215, 215, 215)


def outline_pictures(expected: list[JSON], actual: list[JSON]) -> Pictures:
    """Polygons (GeoJSON dicts) drawn in one frame, north up: the expected ones in green, the
    actual ones in magenta, and both over each other, areas in only one of them tinted."""
    rings = [[ring for polygon in side for ring in polygon["coordinates"]] for side in (expected, actual)]
    frame = _Frame([point for side in rings for ring in side for point in ring])
    masks = [_area(side, frame) for side in (expected, actual)]
    white = np.full((frame.height, frame.width, 3), 255, np.uint8)
    pictures = []
    for mask, side, colour, fill in zip(
        masks,
        (expected, actual),
        (EXPECTED_COLOUR, ACTUAL_COLOUR),
        (EXPECTED_ONLY_FILL, ACTUAL_ONLY_FILL),
        strict=True,
    ):
        own = white.copy()
        own[mask] = fill
        pictures.append(_outlined(own, [(side, colour, 3)], frame))
    overlay = white.copy()
    overlay[masks[0] & ~masks[1]] = EXPECTED_ONLY_FILL
    overlay[masks[1] & ~masks[0]] = ACTUAL_ONLY_FILL
    overlay[masks[0] & masks[1]] = BOTH_FILL
    difference = _outlined(overlay, [(expected, EXPECTED_COLOUR, 5), (actual, ACTUAL_COLOUR, 2)], frame)
    return Pictures(
        expected=png(pictures[0]),
        actual=png(pictures[1]),
        difference=png(difference),
        legend="green: expected outline, area only in expected; magenta: actual outline, area "
        "only in actual; gray: area in both (north up)",
    )


class _Frame:
    """From GeoJSON coordinates (x east, y north) to the pixels of a picture, margins kept."""

    def __init__(self, points: list):
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        self.left, self.top = min(xs), max(ys)
        span = max(max(xs) - self.left, self.top - min(ys)) or 1.0
        self.scale = (OUTLINE_SIDE - 2 * OUTLINE_MARGIN) / span
        self.width = round((max(xs) - self.left) * self.scale) + 2 * OUTLINE_MARGIN
        self.height = round((self.top - min(ys)) * self.scale) + 2 * OUTLINE_MARGIN

    def pixels(self, ring: list) -> list[tuple[float, float]]:
        return [
            (OUTLINE_MARGIN + (x - self.left) * self.scale, OUTLINE_MARGIN + (self.top - y) * self.scale)
            for x, y, *_ in ring
        ]


def _area(polygons: list[JSON], frame: _Frame) -> np.ndarray:
    """(H, W) bool: inside an exterior ring and outside its holes."""
    mask = PILImage.new("1", (frame.width, frame.height), 0)
    draw = ImageDraw.Draw(mask)
    for polygon in polygons:
        if not polygon["coordinates"]:
            continue
        exterior, *holes = polygon["coordinates"]
        draw.polygon(frame.pixels(exterior), fill=1)
        for hole in holes:
            draw.polygon(frame.pixels(hole), fill=0)
    return np.asarray(mask, dtype=bool)


def _outlined(rgb: np.ndarray, layers: list, frame: _Frame) -> np.ndarray:
    image = PILImage.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    for polygons, colour, width in layers:
        for polygon in polygons:
            for ring in polygon["coordinates"]:
                draw.line(frame.pixels(ring), fill=colour, width=width, joint="curve")
    return np.asarray(image)
