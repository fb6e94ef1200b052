"""The catalogue of hostile requests: each one, what it must get, as data.

`test_catalogue.py` sends each case to the real server and then checks that the service still
answers a valid request correctly. Three services serve the cases: `mirror` (every payload
type, answered unchanged), `template` (a required image) and `jobs` (mirror, stateful, with
one finished job whose id replaces `{job}` in paths).

URLs name loopback addresses only, on a port where nothing listens: a service that wrongly
fetched one would still never reach out of the machine.
"""

import base64
import io
import json
import socket
import struct
import zlib
from dataclasses import dataclass
from dataclasses import field as default
from typing import Any

import numpy as np
import tifffile

from images_support import RGB_CHANNELS_LAST
from images_support import png_bytes as png

MAX_BODY_BYTES = 2_000_000
"""PESTO_MAX_BODY_BYTES of the services under test."""


def _port_where_nothing_listens() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


NOWHERE = _port_where_nothing_listens()


# -- encoded images ----------------------------------------------------------------------------
def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def tiff(bands: np.ndarray) -> bytes:
    """A TIFF of (C, H, W) bands, one plane each, as GDAL writes multi-band rasters."""
    buffer = io.BytesIO()
    if len(bands) == 1:
        tifffile.imwrite(buffer, bands[0], photometric="minisblack")
    else:
        tifffile.imwrite(buffer, bands, photometric="minisblack", planarconfig="separate")
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(width: int, height: int, bit_depth: int, colour_type: int, pixels: bytes) -> bytes:
    """A PNG written by hand, so that its header can claim what its data does not hold."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(pixels, 9))
        + _chunk(b"IEND", b"")
    )


def tiff_bomb(width: int, height: int) -> bytes:
    """A deflate TIFF whose header claims `width` x `height` pixels, a few hundred bytes long."""
    data = zlib.compress(b"\0" * 100_000, 9)
    entries = [  # (tag, type: 3 SHORT / 4 LONG, value)
        (256, 4, width),
        (257, 4, height),
        (258, 3, 8),
        (259, 3, 8),
        (262, 3, 1),
        (273, 4, 0),
        (277, 3, 1),
        (278, 4, height),
        (279, 4, len(data)),
    ]
    data_offset = 8 + 2 + 12 * len(entries) + 4
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        value = data_offset if tag == 273 else value
        packed = struct.pack("<HI", value, 0)[:4] if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, 1) + packed
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + data


RGB = RGB_CHANNELS_LAST
"""The valid image of the cases (H, W, C); services answer it channel-first (C, H, W)."""
PNG = png(RGB)
ODD_TIFFS = {
    "5_bands_float64": np.linspace(-1, 1, 5 * 3 * 2).reshape(5, 3, 2),
    "2_bands_int8": np.arange(-6, 6, dtype=np.int8).reshape(2, 2, 3),
    "1_band_uint32": np.array([[[0, 2**32 - 1], [7, 70000]]], dtype=np.uint32),
    "1_band_float32_nan": np.array([[[np.nan, 1.5], [-np.inf, 0.0]]], dtype=np.float32),
    "7_bands_uint16": np.arange(7 * 2 * 2, dtype=np.uint16).reshape(7, 2, 2) * 1000,
}


# -- the cases -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One request and what it must get.

    For an error: `status`, a substring of the message (`error`) and the `field` named (None:
    no field). For a 200: `answer`, the exact JSON answer, or `pixels`, the image it answers.
    """

    name: str
    body: Any = None
    """A JSON value (sent encoded), bytes (sent as they are), or None (no body)."""
    status: int = 400
    error: str | None = None
    field: str | None = None
    service: str = "mirror"
    method: str = "POST"
    path: str = "/api/v1/process"
    content_type: str | None = "application/json"
    headers: dict[str, str] = default(default_factory=dict)
    answer: Any = None
    pixels: np.ndarray | None = None

    def encoded_body(self) -> bytes | None:
        if self.body is None or isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


def refused_uri(name: str, uri: str, field_name: str = "image", body: Any = None) -> Case:
    return Case(name, body or {field_name: uri}, error="PESTO_URI_ALLOWLIST", field=field_name)


def wrong_type(name: str, field_name: str, value: Any, expected: str, got: str) -> Case:
    return Case(name, {field_name: value}, error=f"must be of type {expected}, got {got}", field=field_name)


def odd_tiff(name: str, bands: np.ndarray) -> Case:
    return Case(f"tiff_{name}_is_answered_unchanged", {"image": b64(tiff(bands))}, status=200, pixels=bands)


def job_route(
    name: str, path: str, status: int, error: str, field_name: str | None = None, method: str = "GET"
) -> Case:
    return Case(name, None, status, error, field_name, "jobs", method, path, content_type=None)


UNICODE = "é ü ß ✓ 中文 עברית \u202e \U0001f600 \u00a0 \ufeff \ufffd"
CONTROL = "\u0000 \u0001 \u0007 \b \t \n \r \u001b \u007f \u0085"
DEEP = 150

CASES: list[Case] = [
    # -- the body itself
    Case("not_json", b"hello", error="not valid JSON"),
    Case("truncated_json", b'{"text": "a', error="not valid JSON"),
    Case("truncated_after_a_comma", b'{"text": "a",', error="not valid JSON"),
    Case("empty_body", b"", error="body is empty"),
    Case("only_whitespace", b" \n\t ", error="not valid JSON"),
    Case("json_array_not_object", [1, 2], error="must be a JSON object"),
    Case("json_string_not_object", "text", error="must be a JSON object"),
    Case("json_null_not_object", b"null", error="must be a JSON object"),
    Case("deep_nesting_of_arrays", b"[" * 100_000 + b"]" * 100_000, error="levels deep"),
    Case("deep_nesting_of_objects", b'{"a":' * 5_000 + b"1" + b"}" * 5_000, error="levels deep"),
    Case(
        "deep_nesting_in_a_field",
        {"meta": json.loads('{"a":' * DEEP + "1" + "}" * DEEP)},
        error="more than 100 levels deep",
        field="meta",
    ),
    Case("not_utf8", '{"text": "caf\xe9"}'.encode("latin-1"), error="not valid JSON"),
    Case("utf8_bom_is_accepted", b'\xef\xbb\xbf{"text": "a"}', status=200, answer={"text": "a"}),
    Case(
        "duplicate_keys_the_last_wins",
        b'{"text": "a", "text": 1}',
        error="must be of type string",
        field="text",
    ),
    # -- the framing
    Case(
        "wrong_content_type_text",
        {"text": "a"},
        415,
        "Content-Type: application/json",
        content_type="text/plain",
    ),
    Case(
        "wrong_content_type_form",
        b"text=a",
        415,
        "not application/x-www-form-urlencoded",
        content_type="application/x-www-form-urlencoded",
    ),
    Case(
        "wrong_content_type_multipart",
        b"--x--",
        415,
        "not multipart/form-data",
        content_type="multipart/form-data; boundary=x",
    ),
    Case(
        "wrong_content_type_xml",
        b"<text>a</text>",
        415,
        "not application/xml",
        content_type="application/xml",
    ),
    Case("body_over_the_limit", {"text": "x" * MAX_BODY_BYTES}, 413, "PESTO_MAX_BODY_BYTES"),
    # Refused by waitress before the app sees them, in the same JSON shape (pesto_serve/front.py).
    Case(
        "content_length_not_a_number",
        b'{"text": "a"}',
        error="Content-Length header is not a number",
        headers={"Content-Length": "ten"},
    ),
    Case(
        "content_length_far_over_the_limit_body_not_sent",
        b"{}",
        413,
        "PESTO_MAX_BODY_BYTES",
        headers={"Content-Length": str(100 * MAX_BODY_BYTES)},
    ),
    # -- missing and extra fields
    Case(
        "missing_required_field",
        {"string_parameter": "a"},
        error="required but missing",
        field="image",
        service="template",
    ),
    Case(
        "misspelt_required_field",
        {"imag": b64(PNG)},
        error="required but missing",
        field="image",
        service="template",
    ),
    Case(
        "extra_fields_are_ignored", {"text": "a", "surprise": [1], "__proto__": {}}, 200, answer={"text": "a"}
    ),
    Case("no_field_at_all", {}, 200, answer={}),
    # -- every wrong type
    wrong_type("string_given_a_number", "text", 1, "string", "integer"),
    wrong_type("string_given_null", "text", None, "string", "null"),
    wrong_type("integer_given_a_fraction", "count", 1.5, "integer", "number"),
    wrong_type("integer_given_a_string", "count", "1", "integer", "string"),
    wrong_type("integer_given_a_boolean", "count", True, "integer", "boolean"),
    wrong_type("number_given_a_string", "ratio", "0.5", "number", "string"),
    wrong_type("number_given_an_array", "ratio", [0.5], "number", "array"),
    wrong_type("boolean_given_an_integer", "flag", 1, "boolean", "integer"),
    wrong_type("boolean_given_a_string", "flag", "true", "boolean", "string"),
    wrong_type("metadata_given_an_array", "meta", [1], "object", "array"),
    wrong_type("metadatas_given_an_object", "metas", {}, "array", "object"),
    Case(
        "metadatas_item_not_an_object", {"metas": [{}, 2]}, error="must be of type object", field="metas[1]"
    ),
    wrong_type("polygon_given_a_string", "shape", "POLYGON((0 0))", "object", "string"),
    Case(
        "polygon_without_coordinates",
        {"shape": {"type": "Polygon"}},
        error="required but missing",
        field="shape.coordinates",
    ),
    Case(
        "polygons_holding_a_point",
        {"shapes": [{"type": "Point", "coordinates": [0, 0]}]},
        error="'Point' is not one of ['Polygon']",
        field="shapes[0].type",
    ),
    wrong_type("image_given_a_number", "image", 7, "string", "integer"),
    wrong_type("image_given_an_object", "image", {"data": b64(PNG)}, "string", "object"),
    wrong_type("images_given_a_string", "images", b64(PNG), "array", "string"),
    Case(
        "images_item_not_a_string",
        {"images": [b64(PNG), 3]},
        error="must be of type string",
        field="images[1]",
    ),
    # -- strings where images go
    Case("image_given_words", {"image": "a photo of a cat!"}, error="base64", field="image"),
    Case("image_given_an_empty_string", {"image": ""}, error="not a decodable image", field="image"),
    Case(
        "base64_that_is_not_an_image",
        {"image": b64(b"%PDF-1.7 not an image at all")},
        error="not a decodable image",
        field="image",
    ),
    Case("truncated_png", {"image": b64(PNG[: len(PNG) // 2])}, error="PNG", field="image"),
    Case("png_header_only", {"image": b64(PNG[:8])}, error="not a decodable image", field="image"),
    Case(
        "png_bomb_claiming_100k_by_100k",
        {"image": b64(raw_png(100_000, 100_000, 8, 0, b"\0" * 1000))},
        error="over the limit",
        field="image",
    ),
    Case(
        "tiff_bomb_claiming_100k_by_100k",
        {"image": b64(tiff_bomb(100_000, 100_000))},
        error="over the limit",
        field="image",
    ),
    Case(
        "png_16_bit_colour",
        {"image": b64(raw_png(2, 2, 16, 2, b"\0" + b"\1" * 12 + b"\0" + b"\2" * 12))},
        error="16-bit",
        field="image",
    ),
    Case(
        "tiff_of_complex_numbers",
        {"image": b64(tiff(np.ones((1, 2, 2), np.complex64)))},
        error="not pixel values",
        field="image",
    ),
    Case("images_item_truncated", {"images": [b64(PNG), b64(PNG[:40])]}, error="item 1", field="images"),
    *(odd_tiff(name, bands) for name, bands in ODD_TIFFS.items()),
    Case(
        "data_uri_image_is_read_inline",
        {"image": "data:image/png;base64," + b64(PNG)},
        200,
        pixels=RGB.transpose(2, 0, 1),
    ),
    # -- URIs: refused, whatever they name
    refused_uri("file_etc_passwd", "file:///etc/passwd"),
    refused_uri("file_with_dot_dot", "file:///tmp/../etc/passwd"),
    refused_uri("file_with_encoded_dot_dot", "file:///tmp/%2e%2e/etc/passwd"),
    refused_uri("file_with_a_host", "file://localhost/etc/passwd"),
    refused_uri("http_loopback_where_nothing_listens", f"http://127.0.0.1:{NOWHERE}/cat.png"),
    refused_uri("http_other_loopback_address", f"http://127.0.0.2:{NOWHERE}/cat.png"),
    refused_uri("http_loopback_ipv6", f"http://[::1]:{NOWHERE}/cat.png"),
    refused_uri("https_loopback", f"https://127.0.0.1:{NOWHERE}/cat.png"),
    refused_uri("http_loopback_with_credentials", f"http://user:pw@127.0.0.1:{NOWHERE}/cat.png"),
    refused_uri("ftp_loopback", f"ftp://127.0.0.1:{NOWHERE}/cat.png"),
    refused_uri("gopher_loopback", f"gopher://127.0.0.1:{NOWHERE}/_GET"),
    Case(
        "uri_inside_an_image_list",
        {"images": [f"http://127.0.0.1:{NOWHERE}/a.png"]},
        error="PESTO_URI_ALLOWLIST",
        field="images",
    ),
    # -- numbers
    Case("huge_integer_is_kept_exactly", {"count": 10**400}, 200, answer={"count": 10**400}),
    Case("integer_of_5000_digits", b'{"count": ' + b"9" * 5000 + b"}", error="not valid JSON"),
    Case(
        "largest_float_is_kept",
        {"ratio": 1.7976931348623157e308},
        200,
        answer={"ratio": 1.7976931348623157e308},
    ),
    Case("float_that_overflows", b'{"ratio": 1e999}', error="too large", field="ratio"),
    Case("nan", b'{"ratio": NaN}', error="NaN is not a JSON number", field="ratio"),
    Case("infinity", b'{"ratio": Infinity}', error="Infinity is not a JSON number", field="ratio"),
    Case(
        "minus_infinity_deep_in_metadata",
        b'{"meta": {"x": [1, -Infinity]}}',
        error="-Infinity",
        field="meta.x[1]",
    ),
    Case(
        "nan_in_polygon_coordinates",
        b'{"shape": {"type": "Polygon", "coordinates": [[[0, NaN]]]}}',
        error="NaN",
        field="shape.coordinates[0][0][1]",
    ),
    # -- strings
    Case("unicode_text_round_trips", {"text": UNICODE}, 200, answer={"text": UNICODE}),
    Case(
        "raw_utf8_text_round_trips",
        json.dumps({"text": UNICODE}, ensure_ascii=False).encode(),
        200,
        answer={"text": UNICODE},
    ),
    Case("control_characters_round_trip", {"text": CONTROL}, 200, answer={"text": CONTROL}),
    Case(
        "unicode_keys_in_metadata_round_trip",
        {"meta": {UNICODE: CONTROL}},
        200,
        answer={"meta": {UNICODE: CONTROL}},
    ),
    Case("unpaired_surrogate", b'{"text": "a\\ud800b"}', error="unpaired UTF-16 surrogate", field="text"),
    Case(
        "unpaired_surrogate_in_a_key",
        b'{"meta": {"\\udfff": 1}}',
        error="unpaired UTF-16 surrogate",
        field="meta",
    ),
    Case("long_string_round_trips", {"text": "ab" * 400_000}, 200, answer={"text": "ab" * 400_000}),
    # -- routes and methods
    Case("get_on_process", None, 405, "GET is not allowed", method="GET", content_type=None),
    Case("put_on_process", {"text": "a"}, 405, "PUT is not allowed", method="PUT"),
    Case("unknown_route", None, 404, "no route", method="GET", path="/api/v2/process", content_type=None),
    Case(
        "route_with_dot_dot",
        None,
        404,
        "no route",
        method="GET",
        path="/api/v1/../../etc/passwd",
        content_type=None,
    ),
    Case(
        "jobs_of_a_stateless_service",
        None,
        404,
        "no route",
        method="GET",
        path="/api/v1/jobs",
        content_type=None,
    ),
    # -- jobs: unknown and malformed ids, path-like result keys
    job_route("unknown_job_id", "/api/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA/status", 404, "no job"),
    job_route("malformed_job_id", "/api/v1/jobs/not-a-job/status", 400, "is not a job id", "job_id"),
    job_route(
        "job_id_of_5000_characters",
        "/api/v1/jobs/" + "A" * 5000 + "/status",
        400,
        "is not a job id",
        "job_id",
    ),
    job_route("job_id_with_a_nul", "/api/v1/jobs/%00/status", 400, "is not a job id", "job_id"),
    job_route("job_id_that_is_a_path", "/api/v1/jobs/..%2F..%2Fetc%2Fpasswd/status", 404, "no route"),
    job_route("results_of_an_unknown_job", "/api/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA/results", 404, "no job"),
    job_route("delete_an_unknown_job", "/api/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA", 404, "no job", method="DELETE"),
    job_route(
        "result_key_that_is_a_path", "/api/v1/jobs/{job}/results/..%2F..%2Fetc%2Fpasswd", 404, "no route"
    ),
    job_route("result_key_dot_dot", "/api/v1/jobs/{job}/results/%2e%2e", 404, "has no result '..'", ".."),
    job_route(
        "result_key_of_the_job_file", "/api/v1/jobs/{job}/results/job.json", 404, "has no result", "job.json"
    ),
    job_route("result_index_out_of_range", "/api/v1/jobs/{job}/results/images/2", 404, "no item 2", "images"),
    job_route("result_index_negative", "/api/v1/jobs/{job}/results/images/-1", 404, "no item -1", "images"),
    job_route("result_index_huge", "/api/v1/jobs/{job}/results/images/" + "9" * 30, 404, "no item", "images"),
    job_route(
        "result_index_of_a_single_result", "/api/v1/jobs/{job}/results/text/0", 404, "no items", "text"
    ),
    job_route(
        "delete_a_path_like_result_key",
        "/api/v1/jobs/{job}/results/..%2Fjob.json",
        404,
        "no route",
        method="DELETE",
    ),
    Case(
        "job_with_an_invalid_input_makes_no_job",
        {"image": "file:///etc/passwd"},
        error="PESTO_URI_ALLOWLIST",
        field="image",
        service="jobs",
    ),
]
