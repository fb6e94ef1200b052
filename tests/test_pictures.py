"""The pictures of a difference: what each type draws, and the files and sheet the harness saves.

Pictures are read back as pixels and checked where the rules say what a pixel must be
(pesto_pack/types/pictures.py): equal pixels dim gray, a one-level change red, a change within
the tolerance blue, what one image lacks magenta stripes.
"""

import base64
import io
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

from pesto_pack.types import pictures as drawing
from pesto_pack.types.base import JSON, PayloadType, Pictures, Tolerance
from pesto_pack.types.geometry import POLYGON, POLYGONS
from pesto_pack.types.images import IMAGE, IMAGES
from pytest_pesto.pictures import (
    SHEET_MARGIN,
    comparable_answer,
    contact_sheet,
    readable_diff,
    save_pictures,
)


def rgb(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.mode == "RGB"
    return np.asarray(image)


def pixel(picture: np.ndarray, row: int, column: int, source_size: int) -> tuple[int, ...]:
    """The colour at the centre of source pixel (row, column) of an enlarged picture."""
    factor = picture.shape[0] // source_size
    return tuple(int(v) for v in picture[row * factor + factor // 2, column * factor + factor // 2])


def square(polygon_side: float, at: float = 0) -> dict:
    a, b = at, at + polygon_side
    return {"type": "Polygon", "coordinates": [[[a, a], [a, b], [b, b], [b, a], [a, a]]]}


def encoded(array: np.ndarray) -> str:
    return IMAGE.encode(array)


# -- images -------------------------------------------------------------------------------------
def test_a_one_level_change_is_plainly_red_over_a_dim_gray_expected_image():
    expected = np.full((3, 8, 8), 200, np.uint8)
    actual = expected.copy()
    actual[1, 2, 5] += 1

    (drawn,) = IMAGE.draw_difference(encoded(expected), encoded(actual), Tolerance())

    difference = rgb(drawn.difference)
    red, green, blue = pixel(difference, 2, 5, 8)
    assert (red, blue) == (255, 0) and green < 128  # red, towards orange; not white, not gray
    assert pixel(difference, 0, 0, 8) == (60, 60, 60)  # 200 dimmed to 30 %
    assert rgb(drawn.expected).shape == difference.shape == rgb(drawn.actual).shape
    assert difference.shape[0] >= drawing.MIN_SIDE  # an 8 x 8 image is enlarged to be seen
    assert "tolerance 0" in drawn.legend and "the largest (1) circled" in drawn.legend


def test_differences_within_the_tolerance_are_blue_and_the_largest_is_whitest():
    expected = np.zeros((1, 4, 4), np.uint8)
    actual = expected.copy()
    actual[0, 0, 0], actual[0, 1, 1], actual[0, 3, 3] = 2, 10, 250

    (drawn,) = IMAGE.draw_difference(encoded(expected), encoded(actual), Tolerance(pixel=3))

    difference = rgb(drawn.difference)
    assert pixel(difference, 0, 0, 4) == drawing.WITHIN_TOLERANCE
    smaller, largest = pixel(difference, 1, 1, 4), pixel(difference, 3, 3, 4)
    assert min(largest) >= 250  # 250 of 255: nearly white
    assert smaller[0] == 255 and smaller[2] == 0 and sum(smaller) < sum(largest)
    assert pixel(difference, 2, 2, 4) == (0, 0, 0)


def test_a_channel_first_rgb_image_is_shown_in_its_colours():
    expected = np.zeros((3, 4, 6), np.uint8)
    expected[0] = 255  # red band
    actual = expected.copy()
    actual[2, 0, 0] = 255

    (drawn,) = IMAGE.draw_difference(encoded(expected), encoded(actual), Tolerance())

    shown = rgb(drawn.expected)
    assert shown.shape[1] > shown.shape[0]  # 4 rows, 6 columns: the picture is wider than high
    assert pixel(shown, 1, 1, 4) == (255, 0, 0)
    assert pixel(rgb(drawn.actual), 0, 0, 4) == (255, 0, 255)


def test_a_grayscale_image_is_gray():
    expected = np.arange(16, dtype=np.uint8).reshape(1, 4, 4) * 16
    (drawn,) = IMAGE.draw_difference(encoded(expected), encoded(expected[:, ::-1].copy()), Tolerance())
    assert pixel(rgb(drawn.expected), 3, 3, 4) == (240, 240, 240)


def test_16_bit_images_are_stretched_together_from_their_lowest_to_their_highest_value():
    expected = np.full((1, 4, 4), 1000, np.uint16)
    actual = expected.copy()
    actual[0, 0, 0] = 3000
    expected[0, 3, 3] = 2000

    (drawn,) = IMAGE.draw_difference(encoded(expected), encoded(actual), Tolerance())

    assert pixel(rgb(drawn.expected), 1, 1, 4) == (0, 0, 0)  # 1000, the lowest
    assert pixel(rgb(drawn.expected), 3, 3, 4) == (128, 128, 128)  # 2000, half way
    assert pixel(rgb(drawn.actual), 0, 0, 4) == (255, 255, 255)  # 3000, the highest
    red, green, blue = pixel(rgb(drawn.difference), 0, 0, 4)
    assert (red, green) == (255, 255) and blue < 128  # 2000 of 65535 (log scale): past yellow


def test_a_multiband_image_shows_bands_0_1_2_and_its_difference_counts_every_band():
    expected = np.zeros((6, 4, 4), np.uint16)
    expected[1] = 500
    actual = expected.copy()
    actual[5, 2, 1] = 7  # a band that is not shown

    (drawn,) = IMAGE.draw_difference(encoded(expected), encoded(actual), Tolerance())

    assert pixel(rgb(drawn.expected), 0, 0, 4) == (0, 255, 0)  # band 1 as green
    assert rgb(drawn.expected).tolist() == rgb(drawn.actual).tolist()
    assert pixel(rgb(drawn.difference), 2, 1, 4)[0] == 255
    assert pixel(rgb(drawn.difference), 0, 0, 4) == (25, 25, 25)  # green 255 in gray, dimmed


def test_images_of_different_shapes_are_drawn_on_one_canvas_with_stripes_where_one_lacks_pixels():
    expected = np.full((3, 4, 4), 90, np.uint8)
    actual = np.full((3, 2, 4), 90, np.uint8)

    (drawn,) = IMAGE.draw_difference(encoded(expected), encoded(actual), Tolerance())

    difference, shown_actual = rgb(drawn.difference), rgb(drawn.actual)
    assert difference.shape == shown_actual.shape == rgb(drawn.expected).shape
    bottom = difference[difference.shape[0] * 3 // 4 :]
    assert {tuple(c) for c in bottom.reshape(-1, 3)} <= {
        drawing.ONLY_ONE_IMAGE,
        (0, 0, 0),
        drawing.LARGEST_MARK,
    }
    assert drawing.ONLY_ONE_IMAGE in {tuple(c) for c in shown_actual[-4:].reshape(-1, 3)}
    assert pixel(difference, 0, 0, 4) == (27, 27, 27)
    assert "one image only" in drawn.legend


def test_a_large_image_is_reduced_and_one_changed_pixel_still_shows():
    expected = np.zeros((1, 3000, 2000), np.uint8)
    actual = expected.copy()
    actual[0, 1501, 1001] = 1

    (drawn,) = IMAGE.draw_difference(encoded(expected), encoded(actual), Tolerance())

    difference = rgb(drawn.difference)
    assert max(difference.shape[:2]) <= drawing.MAX_SIDE
    assert (difference[..., 0] == 255).any() and (difference[..., 2] == 0).any()


def test_an_undecodable_image_draws_nothing_as_compare_already_says_why():
    assert IMAGE.draw_difference("not base64!", encoded(np.zeros((1, 2, 2), np.uint8)), Tolerance()) == []


def test_images_draw_each_differing_item_named_by_its_index():
    same = np.zeros((1, 3, 3), np.uint8)
    changed = same.copy()
    changed[0, 1, 1] = 9
    expected, actual = [encoded(same), encoded(same)], [encoded(same), encoded(changed)]

    drawn = IMAGES.draw_difference(expected, actual, Tolerance())

    assert [p.part for p in drawn] == ["1"]


def test_a_type_that_says_it_is_an_image_is_drawn_by_its_pixels():
    """A plugin's `Mask` with `media_type` image/png and the base class's files: no code to draw."""

    class MaskFile(PayloadType):
        def to_result(self, value):
            from pesto_pack.types.base import Result

            return Result(base64.b64decode(value), "image/png")

    mask = MaskFile("Mask", definition={"type": "string"}, media_type="image/png")
    on = np.zeros((1, 4, 4), np.uint8)
    off = on.copy()
    off[0, 0, 0] = 255

    (drawn,) = mask.draw_difference(encoded(on), encoded(off), Tolerance())

    assert min(pixel(rgb(drawn.difference), 0, 0, 4)) >= 250  # the largest an 8-bit image has
    assert PayloadType("plain").draw_difference({"a": 1}, {"a": 2}, Tolerance()) == []


# -- a type that draws its own ----------------------------------------------------------------
@dataclass
class LabelledMask(PayloadType):
    """A third-party type drawing its own difference: labels as flat colours, changes in white."""

    def draw_difference(self, expected: JSON, actual: JSON, tolerance: Tolerance) -> list[Pictures]:
        palette = np.array([[0, 0, 0], [0, 120, 255], [255, 200, 0]], np.uint8)
        wanted, got = np.array(expected), np.array(actual)
        changed = np.where((wanted != got)[..., None], 255, palette[wanted] // 3).astype(np.uint8)
        return [
            Pictures(
                drawing.png(palette[wanted]),
                drawing.png(palette[got]),
                drawing.png(changed),
                legend="white: label changed",
            )
        ]


def test_a_third_party_type_draws_its_own_pictures_which_the_harness_saves_with_a_sheet(tmp_path):
    mask = LabelledMask("LabelledMask", definition={"type": "array"})

    saved = save_pictures(tmp_path, "labels", mask, [[0, 1], [2, 2]], [[0, 1], [1, 2]], Tolerance())

    (only,) = saved
    assert (only.difference, only.sheet) == (tmp_path / "labels.diff.png", tmp_path / "labels.sheet.png")
    assert rgb(only.difference.read_bytes())[1, 0].tolist() == [255, 255, 255]
    sheet = rgb(only.sheet.read_bytes())
    assert sheet.shape[1] > 3 * 2 and only.label == "labels"


# -- polygons -----------------------------------------------------------------------------------
def test_a_polygon_is_drawn_as_both_outlines_over_each_other():
    (drawn,) = POLYGON.draw_difference(square(2), square(2, at=1), Tolerance())

    overlay = rgb(drawn.difference)
    colours = {tuple(c) for c in overlay.reshape(-1, 3)}
    assert {drawing.EXPECTED_COLOUR, drawing.ACTUAL_COLOUR, drawing.BOTH_FILL} <= colours
    assert {drawing.EXPECTED_ONLY_FILL, drawing.ACTUAL_ONLY_FILL} <= colours
    # north up: the expected square (lower left) is bottom left, the actual one top right
    height, width = overlay.shape[:2]
    assert tuple(overlay[height * 3 // 4, width // 4]) == drawing.EXPECTED_ONLY_FILL
    assert tuple(overlay[height // 4, width * 3 // 4]) == drawing.ACTUAL_ONLY_FILL
    assert drawing.ACTUAL_COLOUR not in {tuple(c) for c in rgb(drawn.expected).reshape(-1, 3)}


def test_polygons_are_drawn_together_in_one_frame():
    drawn = POLYGONS.draw_difference([square(1), square(1, at=3)], [square(1)], Tolerance())

    (only,) = drawn
    assert only.part == ""
    assert drawing.EXPECTED_ONLY_FILL in {tuple(c) for c in rgb(only.difference).reshape(-1, 3)}


def test_a_value_that_is_not_a_polygon_draws_nothing():
    assert POLYGON.draw_difference(square(1), {"type": "Point"}, Tolerance()) == []
    assert POLYGONS.draw_difference([square(1)], "no", Tolerance()) == []


# -- the harness's files and diff ---------------------------------------------------------------
def test_the_harness_saves_diff_and_sheet_per_item_of_a_list(tmp_path):
    same = np.zeros((1, 3, 3), np.uint8)
    changed = same + 1

    saved = save_pictures(
        tmp_path, "images", IMAGES, [encoded(same)] * 2, [encoded(changed)] * 2, Tolerance()
    )

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "images.0.diff.png",
        "images.0.sheet.png",
        "images.1.diff.png",
        "images.1.sheet.png",
    ]
    assert [s.label for s in saved] == ["images item 0", "images item 1"]


def test_the_sheet_puts_expected_actual_and_difference_side_by_side():
    red, green, blue = (np.full((10, 20, 3), c, np.uint8) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255)))
    pictures = Pictures(drawing.png(red), drawing.png(green), drawing.png(blue), legend="a legend")

    sheet = rgb(contact_sheet(pictures, "image"))

    (top, *_), _ = np.nonzero((sheet == (255, 0, 0)).all(axis=2))
    row = [tuple(c) for c in sheet[top]]
    reds, greens, blues = (row.index(c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255)))
    assert reds < greens < blues and greens - reds == blues - greens == 20 + SHEET_MARGIN
    assert top > 30 and sheet.shape[0] > top + 10 + 20  # the title and captions above, the legend below


def test_the_readable_diff_shows_json_changes_and_stands_in_for_images():
    types = {"meta": PayloadType("object"), "image": IMAGE}
    expected = {"meta": {"a": 1, "b": [1, 2]}, "image": "AAAA"}
    actual = {"meta": {"a": 2, "b": [1, 2]}, "image": "BBBB"}

    diff = readable_diff(
        comparable_answer(expected, types), comparable_answer(actual, types), "output/", "actual/"
    )

    assert diff.startswith("--- output/\n+++ actual/\n")
    assert '-    "a": 1,\n+    "a": 2,\n' in diff
    assert "AAAA" not in diff and "BBBB" not in diff
    assert readable_diff({"a": 1}, {"a": 1}, "x", "y") == ""
    moved = readable_diff(square(1), square(1, at=2), "x", "y")
    assert "-      [0, 0],\n" in moved and "+      [2, 2],\n" in moved  # a position, one line


@pytest.mark.parametrize("size", [(1, 1), (1, 4000)])
def test_extreme_shapes_give_pictures_of_a_sensible_size(size):
    expected = np.zeros((1, *size), np.uint8)
    drawn = drawing.image_pictures(expected, expected + 3, 0)
    height, width = rgb(drawn.difference).shape[:2]
    assert 1 <= height and width <= drawing.MAX_SIDE
