"""The `Image` and `Images` payload types: base64 files in, (C, H, W) arrays out, and back."""

import base64
import io
import struct
import time
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage

from pesto_pack.errors import PayloadError
from pesto_pack.types.base import DecodeSettings, Result, Tolerance
from pesto_pack.types.images import IMAGE, IMAGES

SETTINGS = DecodeSettings()
RNG = np.random.default_rng(7)


def pil_base64(image: PILImage.Image, image_format: str = "PNG", **options) -> str:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return base64.b64encode(buffer.getvalue()).decode()


def tiff_base64(array: np.ndarray, **options) -> str:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **options)
    return base64.b64encode(buffer.getvalue()).decode()


def random_bytes(*shape: int) -> np.ndarray:
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG of a few bytes whose header claims `width` x `height` RGB pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


# -- decoding ---------------------------------------------------------------------------------


def test_decode_rgb_png_gives_channel_first_uint8():
    pixels = random_bytes(5, 7, 3)
    array = IMAGE.decode(pil_base64(PILImage.fromarray(pixels)), SETTINGS)
    assert array.shape == (3, 5, 7) and array.dtype == np.uint8
    np.testing.assert_array_equal(array, pixels.transpose(2, 0, 1))


def test_decode_rgba_png_keeps_four_bands():
    pixels = random_bytes(4, 6, 4)
    array = IMAGE.decode(pil_base64(PILImage.fromarray(pixels, "RGBA")), SETTINGS)
    np.testing.assert_array_equal(array, pixels.transpose(2, 0, 1))


def test_decode_grayscale_png_is_one_band():
    pixels = random_bytes(4, 6)
    array = IMAGE.decode(pil_base64(PILImage.fromarray(pixels)), SETTINGS)
    assert array.shape == (1, 4, 6)
    np.testing.assert_array_equal(array[0], pixels)


def test_decode_palette_png_expands_to_rgb():
    image = PILImage.new("P", (3, 2))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.putpixel((1, 1), 1)
    array = IMAGE.decode(pil_base64(image), SETTINGS)
    assert array.shape == (3, 2, 3)
    assert list(array[:, 0, 0]) == [255, 0, 0] and list(array[:, 1, 1]) == [0, 0, 255]


def test_decode_palette_png_with_transparency_expands_to_rgba():
    image = PILImage.new("P", (3, 2))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    array = IMAGE.decode(pil_base64(image, transparency=0), SETTINGS)
    assert array.shape == (4, 2, 3) and array[3, 0, 0] == 0


def test_decode_16_bit_png_stays_uint16():
    pixels = RNG.integers(0, 65536, (5, 4), dtype=np.uint16)
    array = IMAGE.decode(pil_base64(PILImage.fromarray(pixels)), SETTINGS)
    assert array.dtype == np.uint16
    np.testing.assert_array_equal(array[0], pixels)


def test_decode_refuses_a_16_bit_colour_png_rather_than_dropping_8_bits():
    rows = np.arange(2 * 3 * 3, dtype=">u2").reshape(2, 3, 3) * 3000
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 2, 16, 2, 0, 0, 0))
        + png_chunk(b"IDAT", zlib.compress(raw))
        + png_chunk(b"IEND", b"")
    )
    with pytest.raises(PayloadError, match="16-bit RGB PNG images cannot be read .* as TIFF"):
        IMAGE.decode(base64.b64encode(png).decode(), SETTINGS)


def test_decode_16_bit_rgb_tiff_stays_uint16():
    pixels = RNG.integers(0, 65536, (4, 5, 3), dtype=np.uint16)
    array = IMAGE.decode(tiff_base64(pixels, photometric="rgb"), SETTINGS)
    np.testing.assert_array_equal(array, pixels.transpose(2, 0, 1))


def test_decode_jpeg():
    pixels = np.full((8, 8, 3), (200, 100, 50), dtype=np.uint8)
    array = IMAGE.decode(pil_base64(PILImage.fromarray(pixels), "JPEG", quality=95), SETTINGS)
    assert array.shape == (3, 8, 8) and array.dtype == np.uint8
    assert np.abs(array.astype(int) - pixels.transpose(2, 0, 1)).max() <= 3


@pytest.mark.parametrize("planarconfig", ["separate", "contig"])
def test_decode_multi_band_uint16_tiff(planarconfig):
    bands = RNG.integers(0, 65536, (6, 5, 4), dtype=np.uint16)
    stored = bands if planarconfig == "separate" else bands.transpose(1, 2, 0)
    value = tiff_base64(stored, photometric="minisblack", planarconfig=planarconfig)
    array = IMAGE.decode(value, SETTINGS)
    assert array.dtype == np.uint16
    np.testing.assert_array_equal(array, bands)


def test_decode_float32_tiff_keeps_values():
    band = RNG.random((5, 4), dtype=np.float32)
    array = IMAGE.decode(tiff_base64(band), SETTINGS)
    assert array.dtype == np.float32
    np.testing.assert_array_equal(array[0], band)


def test_decode_big_endian_tiff_gives_native_byte_order():
    band = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000
    array = IMAGE.decode(tiff_base64(band, byteorder=">"), SETTINGS)
    assert array.dtype.isnative
    np.testing.assert_array_equal(array[0], band)


def test_decode_lzw_tiff_that_tifffile_cannot_decode_goes_through_pillow():
    pixels = random_bytes(5, 6, 3)
    value = pil_base64(PILImage.fromarray(pixels), "TIFF", compression="tiff_lzw")
    np.testing.assert_array_equal(IMAGE.decode(value, SETTINGS), pixels.transpose(2, 0, 1))


def test_decode_tolerates_a_data_uri_prefix_and_line_breaks():
    value = pil_base64(PILImage.fromarray(random_bytes(4, 4)))
    lines = "\n".join(value[i : i + 8] for i in range(0, len(value), 8))
    wrapped = "data:image/png;base64," + lines
    np.testing.assert_array_equal(IMAGE.decode(wrapped, SETTINGS), IMAGE.decode(value, SETTINGS))


def test_decode_refuses_a_bomb_before_allocating_its_pixels():
    value = base64.b64encode(png_claiming(100_000, 100_000)).decode()
    started = time.monotonic()
    with pytest.raises(PayloadError, match="^image is 100000x100000 pixels, over the limit of"):
        IMAGE.decode(value, SETTINGS)
    assert time.monotonic() - started < 1


def test_decode_applies_the_operators_pixel_limit_to_tiff_too():
    value = tiff_base64(np.zeros((20, 20), dtype=np.uint8))
    with pytest.raises(PayloadError, match="^image is 20x20 pixels, over the limit of 100 "):
        IMAGE.decode(value, DecodeSettings(max_image_pixels=100))


def test_decode_limits_the_band_values_of_a_many_band_tiff():
    value = tiff_base64(np.zeros((5, 10, 10), np.uint8), photometric="minisblack", planarconfig=2)
    IMAGE.decode(value, DecodeSettings(max_image_pixels=125))
    with pytest.raises(PayloadError, match="10x10 pixels of 5 bands, over the limit of 400 values"):
        IMAGE.decode(value, DecodeSettings(max_image_pixels=100))


def test_decode_refuses_a_truncated_png():
    data = base64.b64decode(pil_base64(PILImage.fromarray(random_bytes(64, 64, 3))))
    value = base64.b64encode(data[: len(data) // 2]).decode()
    with pytest.raises(PayloadError, match="truncated image"):
        IMAGE.decode(value, SETTINGS)


def test_decode_refuses_what_is_not_base64():
    with pytest.raises(PayloadError, match="not valid base64"):
        IMAGE.decode("this is not base64!", SETTINGS)


def test_decode_refuses_base64_of_something_else():
    with pytest.raises(PayloadError, match=r"not a decodable image \(PNG, JPEG or TIFF expected\)"):
        IMAGE.decode(base64.b64encode(b"GIF89a and so on").decode(), SETTINGS)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_decode_refuses_a_broken_tiff_header():
    value = base64.b64encode(b"II*\x00" + b"\xff" * 20).decode()
    with pytest.raises(PayloadError, match="not a decodable image"):
        IMAGE.decode(value, SETTINGS)


def test_decode_refuses_a_value_that_is_not_a_string():
    with pytest.raises(PayloadError, match="an image is a base64 string, got integer"):
        IMAGE.decode(42, SETTINGS)


# -- URIs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "file:///etc/passwd",
        "http://169.254.169.254/x.png",
        "https://a.example/x.png",
        "gs://bucket/x.tif",
        "s3://bucket/x.tif",
        "ftp://host/x.png",
    ],
)
def test_decode_refuses_a_uri_by_default(uri):
    with pytest.raises(PayloadError, match="refusing to open .*PESTO_URI_ALLOWLIST: none"):
        IMAGE.decode(uri, SETTINGS)


def test_decode_opens_a_file_uri_under_an_allowed_prefix(tmp_path):
    pixels = random_bytes(3, 4)
    PILImage.fromarray(pixels).save(tmp_path / "in.png")
    settings = DecodeSettings(uri_allowlist=(tmp_path.as_uri() + "/",))
    np.testing.assert_array_equal(IMAGE.decode((tmp_path / "in.png").as_uri(), settings)[0], pixels)


def test_decode_refuses_a_file_uri_that_climbs_out_of_the_allowed_prefix(tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    PILImage.fromarray(random_bytes(3, 4)).save(tmp_path / "secret.png")
    settings = DecodeSettings(uri_allowlist=(allowed.as_uri() + "/",))
    with pytest.raises(PayloadError, match="refusing to open"):
        IMAGE.decode(allowed.as_uri() + "/../secret.png", settings)


def test_decode_refuses_an_allowed_scheme_it_cannot_open():
    settings = DecodeSettings(uri_allowlist=("gs://bucket/",))
    with pytest.raises(PayloadError, match="gs:// URIs are not supported"):
        IMAGE.decode("gs://bucket/x.tif", settings)


def test_decode_fetches_an_allowed_http_uri(file_server):
    (file_server.folder / "images").mkdir()
    pixels = random_bytes(3, 4)
    PILImage.fromarray(pixels).save(file_server.folder / "images" / "in.png")
    file_server.redirects["/images/jump"] = "/elsewhere/in.png"
    settings = DecodeSettings(uri_allowlist=(file_server.url + "/images/",))
    array = IMAGE.decode(file_server.url + "/images/in.png", settings)
    np.testing.assert_array_equal(array[0], pixels)
    with pytest.raises(PayloadError, match="refusing the redirect"):
        IMAGE.decode(file_server.url + "/images/jump", settings)


def test_decode_reports_an_allowed_uri_that_cannot_be_read(tmp_path):
    settings = DecodeSettings(uri_allowlist=(tmp_path.as_uri() + "/",))
    with pytest.raises(PayloadError, match="cannot read .*missing.png.*No such file"):
        IMAGE.decode((tmp_path / "missing.png").as_uri(), settings)
    settings = DecodeSettings(uri_allowlist=("http://127.0.0.1:1/",))
    with pytest.raises(PayloadError, match="cannot read 'http://127.0.0.1:1/x.png'"):
        IMAGE.decode("http://127.0.0.1:1/x.png", settings)


# -- encoding ---------------------------------------------------------------------------------


def encoded_format(value: str) -> str:
    return IMAGE.to_result(value).media_type


@pytest.mark.parametrize(
    "array, media_type",
    [
        (random_bytes(4, 5), "image/png"),
        (random_bytes(1, 4, 5), "image/png"),
        (random_bytes(3, 4, 5), "image/png"),
        (random_bytes(4, 4, 5), "image/png"),
        (RNG.integers(0, 65536, (1, 4, 5), dtype=np.uint16), "image/png"),
        (RNG.integers(0, 65536, (3, 4, 5), dtype=np.uint16), "image/tiff"),
        (random_bytes(2, 4, 5), "image/tiff"),
        (random_bytes(5, 4, 5), "image/tiff"),
        (RNG.random((1, 4, 5), dtype=np.float32), "image/tiff"),
        (RNG.random((3, 4, 5)), "image/tiff"),
        (RNG.integers(-1000, 1000, (2, 4, 5), dtype=np.int32), "image/tiff"),
    ],
    ids=lambda v: f"{v.shape}-{v.dtype}" if isinstance(v, np.ndarray) else v,
)
def test_encode_then_decode_gives_the_same_array(array, media_type):
    value = IMAGE.encode(array)
    assert encoded_format(value) == media_type
    decoded = IMAGE.decode(value, SETTINGS)
    assert decoded.dtype == array.dtype
    np.testing.assert_array_equal(decoded, array if array.ndim == 3 else array[np.newaxis])


def test_encode_a_boolean_mask_as_a_png_of_zeros_and_ones():
    mask = np.eye(4, dtype=bool)
    value = IMAGE.encode(mask)
    assert encoded_format(value) == "image/png"
    np.testing.assert_array_equal(IMAGE.decode(value, SETTINGS)[0], mask.astype(np.uint8))


def test_encode_accepts_a_pil_image():
    pixels = random_bytes(3, 4, 3)
    value = IMAGE.encode(PILImage.fromarray(pixels))
    np.testing.assert_array_equal(IMAGE.decode(value, SETTINGS), pixels.transpose(2, 0, 1))


@pytest.mark.parametrize(
    "value, message",
    [
        ([[1, 2], [3, 4]], "must be a numpy array .* got list"),
        (np.zeros(5, dtype=np.uint8), r"shape \(C, H, W\) or \(H, W\); got \(5,\)"),
        (np.zeros((1, 2, 3, 4), dtype=np.uint8), r"got \(1, 2, 3, 4\)"),
        (np.zeros((0, 4), dtype=np.uint8), r"got \(0, 4\)"),
        (np.zeros((2, 2), dtype=complex), "cannot encode an image of dtype complex128"),
    ],
)
def test_encode_refuses_what_is_not_an_image(value, message):
    with pytest.raises(PayloadError, match=message):
        IMAGE.encode(value)


def test_results_are_the_image_bytes_with_their_media_type():
    value = IMAGE.encode(random_bytes(3, 4))
    result = IMAGE.to_result(value)
    assert result == Result(base64.b64decode(value), "image/png")
    assert IMAGE.from_result(result) == value


# -- test files -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "array, suffix",
    [(random_bytes(3, 4, 5), ".png"), (RNG.random((2, 4, 5), dtype=np.float32), ".tif")],
)
def test_write_file_then_read_file_round_trips(tmp_path, array, suffix):
    value = IMAGE.encode(array)
    path = IMAGE.write_file(value, tmp_path / "image")
    assert path == tmp_path / f"image{suffix}"
    assert IMAGE.read_file(path) == value


def test_read_file_gives_the_file_bytes_in_base64_as_a_client_sends_them(tmp_path):
    PILImage.fromarray(random_bytes(4, 4, 3)).save(tmp_path / "photo.jpg")
    value = IMAGE.read_file(tmp_path / "photo.jpg")
    assert base64.b64decode(value) == (tmp_path / "photo.jpg").read_bytes()
    assert IMAGE.write_file(value, tmp_path / "copy") == tmp_path / "copy.jpg"


# -- comparing --------------------------------------------------------------------------------


def test_compare_equal_images_finds_no_difference():
    pixels = random_bytes(3, 4, 5)
    assert IMAGE.compare(IMAGE.encode(pixels), IMAGE.encode(pixels.copy()), Tolerance()) == []


def test_compare_by_pixels_not_by_file_bytes():
    pixels = random_bytes(3, 4, 5)
    as_tiff = tiff_base64(pixels, photometric="minisblack", planarconfig="separate")
    assert IMAGE.compare(IMAGE.encode(pixels), as_tiff, Tolerance()) == []


def test_compare_allows_differences_within_the_pixel_tolerance():
    pixels = random_bytes(1, 4, 5) // 2
    changed = pixels.copy()
    changed[0, 2, 3] += 2
    expected, actual = IMAGE.encode(pixels), IMAGE.encode(changed)
    assert IMAGE.compare(expected, actual, Tolerance(pixel=2)) == []
    assert IMAGE.compare(expected, actual, Tolerance(pixel=1)) == [
        "1 of 20 pixels (5%) differ by more than the tolerance 1; mean difference 0.1",
        "largest pixel difference 2 (band 0, row 2, column 3) is over the tolerance 1: "
        "expected (1, 4, 5) uint8, got (1, 4, 5) uint8",
    ]


def test_compare_reports_shape_and_dtype_differences():
    pixels = random_bytes(3, 4, 5)
    assert IMAGE.compare(IMAGE.encode(pixels), IMAGE.encode(pixels[:1]), Tolerance()) == [
        "image shapes differ: expected (3, 4, 5) uint8, got (1, 4, 5) uint8"
    ]
    wider = IMAGE.encode(pixels[:1].astype(np.uint16))
    assert IMAGE.compare(IMAGE.encode(pixels[:1]), wider, Tolerance()) == [
        "image dtypes differ: expected (1, 4, 5) uint8, got (1, 4, 5) uint16"
    ]


def test_compare_treats_nan_as_equal_to_nan_only():
    band = np.array([[np.nan, 1.0]], dtype=np.float32)
    other = np.array([[0.0, 1.0]], dtype=np.float32)
    assert IMAGE.compare(IMAGE.encode(band), IMAGE.encode(band), Tolerance()) == []
    count, largest = IMAGE.compare(IMAGE.encode(band), IMAGE.encode(other), Tolerance(pixel=10))
    assert count == "1 of 2 pixels (50%) differ by more than the tolerance 10; mean difference inf"
    assert largest.startswith("largest pixel difference inf (band 0, row 0, column 0)")


def test_compare_reports_an_answer_that_is_not_an_image():
    expected = IMAGE.encode(random_bytes(2, 2))
    assert IMAGE.compare(expected, "oops!", Tolerance()) == [
        "the actual image cannot be decoded: not valid base64; send the image file's bytes encoded in base64"
    ]


# -- Images -----------------------------------------------------------------------------------


def test_images_decode_and_encode_item_by_item():
    arrays = [random_bytes(3, 2, 2), random_bytes(1, 3, 3)]
    values = IMAGES.encode(arrays)
    decoded = IMAGES.decode(values, SETTINGS)
    assert [a.shape for a in decoded] == [(3, 2, 2), (1, 3, 3)]
    assert IMAGES.encode(np.stack([arrays[0], arrays[0]])) == [values[0], values[0]]


def test_images_errors_name_the_item():
    good = IMAGE.encode(random_bytes(2, 2))
    with pytest.raises(PayloadError, match=r"^item 2: not valid base64"):
        IMAGES.decode([good, good, "nope!"], SETTINGS)
    with pytest.raises(PayloadError, match="^item 1: .*got str"):
        IMAGES.encode([random_bytes(2, 2), "nope"])
    with pytest.raises(PayloadError, match="expected an array of Image, got string"):
        IMAGES.decode(good, SETTINGS)


def test_images_test_folder_round_trips_and_drops_stale_items(tmp_path):
    values = IMAGES.encode([random_bytes(3, 2, 2), RNG.random((1, 2, 2), dtype=np.float32)])
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "7.png").write_bytes(b"stale")
    assert IMAGES.write_file(values, folder) == folder
    assert sorted(p.name for p in folder.iterdir()) == ["0.png", "1.tif"]
    assert IMAGES.read_file(folder) == values


def test_images_folder_is_read_in_index_order(tmp_path):
    values = [IMAGE.encode(np.full((1, 1), i, dtype=np.uint8)) for i in range(11)]
    for index, value in enumerate(values):
        IMAGE.write_file(value, tmp_path / str(index))
    assert IMAGES.read_file(tmp_path) == values


def test_images_compare_reports_lengths_and_items():
    first, second = IMAGE.encode(random_bytes(1, 2, 2)), IMAGE.encode(random_bytes(3, 2, 2))
    assert IMAGES.compare([first, second], [first, second], Tolerance()) == []
    assert IMAGES.compare([first, second], [first, first, first], Tolerance()) == [
        "list lengths differ: expected 2, got 3",
        "item 1: image shapes differ: expected (3, 2, 2) uint8, got (1, 2, 2) uint8",
    ]
