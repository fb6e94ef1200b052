"""POST /api/v1/process, stateless: answers, and every error a caller can make or meet."""

import base64
import json
import logging
from types import SimpleNamespace

import numpy as np
import pytest

from images_support import RGB_CHANNELS_FIRST as RGB
from images_support import decode_png, png_base64
from pesto_pack import hookimpl
from pesto_pack.plugins import Registry, make_plugin_manager
from pesto_pack.project import ServiceApi
from pesto_pack.types.base import DecodeSettings, PayloadType
from pesto_serve.errors import AnswerError
from pesto_serve.payloads import Payloads, to_json_bytes
from serve_support import copy_project, error_of, served


@pytest.fixture(scope="module")
def echo():
    with served("echo") as (app, _service):
        yield app


@pytest.fixture(scope="module")
def template():
    with served("template", uri_allowlist=()) as (app, _service):
        yield app


@pytest.fixture(scope="module")
def faulty():
    with served("faulty") as (app, _service):
        yield app


def test_process_echoes_the_inputs(echo):
    answer = echo.post_json("/api/v1/process", {"text": "hé", "number": 2.5})
    assert answer.content_type == "application/json"
    assert answer.json == {"text": "hé", "number": 2.5}


def test_process_passes_dataclass_defaults_for_inputs_not_sent(echo):
    assert echo.post_json("/api/v1/process", {"text": "a"}).json == {"text": "a", "number": 0.0}


def test_process_ignores_fields_the_input_schema_does_not_declare(echo):
    assert echo.post_json("/api/v1/process", {"text": "a", "other": 1}).json["text"] == "a"


def test_process_decodes_an_image_and_encodes_every_output_type(template):
    answer = template.post_json(
        "/api/v1/process",
        {
            "image": png_base64(RGB),
            "dict_parameter": {"a": 1},
            "object_parameter": {"key": "value"},
            "integer_parameter": 4,
            "number_parameter": 0.5,
            "string_parameter": "abc",
        },
    ).json
    assert (decode_png(answer["image"]) == 255 - RGB).all()
    assert [decode_png(item).shape for item in answer["image_list"]] == [(3, 8, 10)] * 2
    assert (decode_png(answer["image_list"][1]) == RGB[:, ::-1, :]).all()
    assert answer["areas"][0] == {
        "type": "Polygon",
        "coordinates": [[[0, 0], [0, 8], [10, 8], [10, 0], [0, 0]]],
    }
    assert answer["number_output"] == 1.0
    assert answer["integer_output"] == 5
    assert answer["string_output"] == "ABC"
    assert answer["dict_output"] == {"a": 1, "object": {"key": "value"}}
    assert answer["geojson"]["features"][1]["properties"] == {"category": "box", "rank": 1}


def test_process_reads_the_config_from_pesto_config_dir(template):
    answer = template.post_json("/api/v1/process", {"image": png_base64(RGB)}).json
    assert answer["geojson"]["features"][0]["properties"]["category"] == "box"


# -- the caller's errors: 4xx naming the field and the problem ---------------------------------


def test_process_refuses_a_body_that_is_not_json(echo):
    response = echo.post("/api/v1/process", b"{not json", content_type="application/json", status=400)
    assert "not valid JSON" in error_of(response)["message"]


def test_process_refuses_an_empty_body(echo):
    response = echo.post("/api/v1/process", b"", content_type="application/json", status=400)
    assert "empty" in error_of(response)["message"]


def test_process_refuses_json_that_is_not_an_object(echo):
    response = echo.post_json("/api/v1/process", [1, 2], status=400)
    assert "JSON object" in error_of(response)["message"]


def test_process_refuses_a_wrong_content_type(echo):
    response = echo.post(
        "/api/v1/process", b"text=a", content_type="application/x-www-form-urlencoded", status=415
    )
    assert "application/json" in error_of(response)["message"]


def test_process_accepts_a_body_without_content_type(echo):
    response = echo.post("/api/v1/process", b'{"text": "a"}', headers={"Content-Type": ""})
    assert response.json["text"] == "a"


def test_process_refuses_a_body_over_the_limit_before_reading_it():
    with served("echo", max_body_bytes=64) as (app, _service):
        response = app.post_json("/api/v1/process", {"text": "x" * 100}, status=413)
    error = error_of(response)
    assert "over this service's limit of 64" in error["message"]
    assert "PESTO_MAX_BODY_BYTES" in error["message"]


def test_process_names_a_missing_required_field(echo):
    error = error_of(echo.post_json("/api/v1/process", {"number": 1}, status=400))
    assert error == {"status": 400, "field": "text", "message": "is required but missing"}


def test_process_names_a_field_of_the_wrong_type(echo):
    error = error_of(echo.post_json("/api/v1/process", {"text": "a", "number": "one"}, status=400))
    assert error["field"] == "number"
    assert error["message"] == "must be of type number, got string"


def test_process_refuses_an_image_that_is_not_base64(template):
    error = error_of(template.post_json("/api/v1/process", {"image": "not base64 !"}, status=400))
    assert error["field"] == "image"
    assert "base64" in error["message"]


def test_process_refuses_base64_that_is_not_an_image(template):
    value = base64.b64encode(b"just some bytes, no image").decode()
    error = error_of(template.post_json("/api/v1/process", {"image": value}, status=400))
    assert error["field"] == "image"
    assert "not a decodable image" in error["message"]


def test_process_refuses_an_image_over_the_pixel_limit():
    with served("template", max_image_pixels=50) as (app, _service):
        error = error_of(app.post_json("/api/v1/process", {"image": png_base64(RGB)}, status=400))
    assert error["field"] == "image"
    assert "over the limit of 50" in error["message"]


@pytest.mark.parametrize(
    "uri", ["file:///etc/passwd", "http://169.254.169.254/latest", "https://example.org/a.png"]
)
def test_process_refuses_uris_unless_allowed(template, uri):
    error = error_of(template.post_json("/api/v1/process", {"image": uri}, status=400))
    assert error["field"] == "image"
    assert "PESTO_URI_ALLOWLIST" in error["message"]


def test_process_opens_a_file_uri_under_an_allowed_prefix(tmp_path):
    path = tmp_path / "input.png"
    path.write_bytes(base64.b64decode(png_base64(RGB)))
    with served("template", uri_allowlist=(tmp_path.as_uri() + "/",)) as (app, _service):
        answer = app.post_json("/api/v1/process", {"image": path.as_uri()}).json
    assert (decode_png(answer["image"]) == 255 - RGB).all()


def test_process_names_the_item_of_a_bad_image_in_a_list(tmp_path):
    project = copy_project("echo", tmp_path)
    (project / "pesto/api/input_schema.json").write_text(
        json.dumps({"text": {"type": "string"}, "number": {"$ref": "#/definitions/Images"}, "required": []})
    )
    (project / "algorithm/process.py").write_text(
        "class Process:\n    def process(self, text=None, number=None):\n        return {}\n"
    )
    with served(project) as (app, _service):
        error = error_of(app.post_json("/api/v1/process", {"number": [png_base64(RGB), "%%"]}, status=400))
    assert error["field"] == "number"
    assert "item 1" in error["message"]


# -- the service's errors: 500, logged, and the service goes on ---------------------------------


def test_process_raising_is_a_500_with_its_message_and_the_next_request_works(faulty, caplog):
    with caplog.at_level(logging.ERROR):
        response = faulty.post_json("/api/v1/process", {"mode": "raise"}, status=500)
    error = error_of(response)
    assert error["message"] == "the service's process() raised ValueError: the input asked for an error"
    assert "Traceback" not in response.text
    assert any(r.exc_info and "the input asked for an error" in str(r.exc_info[1]) for r in caplog.records)
    assert faulty.post_json("/api/v1/process", {"mode": "ok"}).json == {"result": "ok", "active": 1}


def test_an_answer_breaking_the_output_schema_is_the_services_error(faulty, caplog):
    with caplog.at_level(logging.ERROR):
        error = error_of(faulty.post_json("/api/v1/process", {"mode": "bad_output"}, status=500))
    assert error["field"] == "result"
    assert error["message"].startswith(
        "the service's process() returned an answer which breaks output_schema.json at result"
    )
    assert "must be of type string, got integer" in error["message"]
    assert any("breaks output_schema.json" in r.getMessage() for r in caplog.records)


def test_an_answer_with_an_undeclared_key_is_the_services_error(faulty):
    error = error_of(faulty.post_json("/api/v1/process", {"mode": "undeclared_output"}, status=500))
    assert error["field"] == "surprise"
    assert "output_schema.json does not declare" in error["message"]


def test_an_answer_that_is_not_an_output_is_the_services_error(faulty):
    error = error_of(faulty.post_json("/api/v1/process", {"mode": "not_an_output"}, status=500))
    assert "returned str" in error["message"]


def test_an_unexpected_error_in_a_route_is_a_json_500_without_details(echo, monkeypatch, caplog):
    monkeypatch.setattr("pesto_serve.app.with_links", lambda *_: 1 / 0)
    with caplog.at_level(logging.ERROR):
        error = error_of(echo.get("/api/v1/describe", status=500))
    assert error["message"] == "internal error of the service; its log has the details"
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)


def test_an_unexpected_error_processing_is_a_json_500_without_details(echo, monkeypatch, caplog):
    # POST /api/v1/process is answered beside bottle (app._process_directly): the same shape.
    monkeypatch.setattr("pesto_serve.app.to_json_bytes", lambda _: 1 / 0)
    with caplog.at_level(logging.ERROR):
        error = error_of(echo.post_json("/api/v1/process", {"text": "a", "number": 1}, status=500))
    assert error["message"] == "internal error of the service; its log has the details"
    assert any(
        r.exc_info and r.exc_info[0] is ZeroDivisionError and "POST /api/v1/process" in r.getMessage()
        for r in caplog.records
    )


def test_a_correlation_id_on_process_is_echoed_and_logged(echo, caplog):
    headers = {"X-Correlation-ID": "req-42"}
    with caplog.at_level(logging.INFO, logger="pesto_serve.access"):
        answer = echo.post_json("/api/v1/process", {"text": "a", "number": 1}, headers=headers)
    assert answer.headers["X-Correlation-ID"] == "req-42"
    assert answer.json == {"text": "a", "number": 1}
    line = next(r for r in caplog.records if r.name == "pesto_serve.access")
    assert line.getMessage().startswith("POST /api/v1/process 200 ")
    assert line.correlation_id == "req-42"
    refused = echo.post_json("/api/v1/process", {}, headers={"X-Correlation-ID": "é"}, status=400)
    assert error_of(refused)["field"] == "X-Correlation-ID"
    assert "X-Correlation-ID" not in refused.headers


class VectorType(PayloadType):
    """A plugin type whose `encode` hands back numpy values, as a quick plugin might."""

    def decode(self, value, settings):
        return np.asarray(value, dtype=np.float32)

    def encode(self, value):
        return {"values": np.asarray(value, dtype=np.float32), "norm": np.float32(2.0)}


@pytest.fixture
def vector_payloads() -> Payloads:
    @hookimpl
    def register_payload_types(register):
        register(VectorType("Vector", definition={"type": "object"}))

    manager = make_plugin_manager(load_entry_points=False)
    manager.register(SimpleNamespace(register_payload_types=register_payload_types), "vector-plugin")
    api = ServiceApi(
        config={},
        config_schema={},
        description={"title": "vectors"},
        input_schema={"required": []},
        output_schema={
            "vector": {"$ref": "#/definitions/Vector"},
            "score": {"type": "number"},
            "required": [],
        },
        user_definitions={},
        version={},
    )
    return Payloads.build(api, Registry.from_plugin_manager(manager), DecodeSettings())


def test_numpy_values_that_a_plugin_type_leaves_in_its_encoding_are_plain_json(vector_payloads):
    encoded = vector_payloads.encode({"vector": [1, 1], "score": np.float64(0.5)})
    assert json.loads(to_json_bytes(encoded)) == {"vector": {"values": [1.0, 1.0], "norm": 2.0}, "score": 0.5}
    documents = vector_payloads.result_documents(encoded)
    assert json.loads(documents["vector"].content) == {"values": [1.0, 1.0], "norm": 2.0}
    assert json.loads(documents["score"].content) == 0.5


@pytest.mark.parametrize("value", [float("nan"), float("inf"), np.float32("-inf")])
def test_an_answer_holding_nan_or_infinity_is_the_services_error_naming_the_field(vector_payloads, value):
    with pytest.raises(AnswerError) as raised:
        vector_payloads.encode({"score": value})
    assert raised.value.status == 500 and raised.value.field == "score"
    assert "JSON cannot carry" in raised.value.message


def test_a_nan_answer_over_http_is_a_json_500_naming_the_field(tmp_path, caplog):
    project = copy_project("echo", tmp_path)
    process = project / "algorithm" / "process.py"
    process.write_text(
        process.read_text().replace(
            "return Output(text=input.text, number=input.number)",
            'return Output(text=input.text, number=float("nan") if input.text == "nan" else input.number)',
        )
    )
    with served(project) as (app, _), caplog.at_level(logging.ERROR):
        response = app.post_json("/api/v1/process", {"text": "nan", "number": 1}, status=500)
        error = error_of(response)
        assert error["field"] == "number" and "NaN and infinities are not JSON numbers" in error["message"]
        assert b"NaN" not in response.body.replace(b"NaN and", b"")
        assert any("JSON cannot carry" in record.getMessage() for record in caplog.records)
        assert app.post_json("/api/v1/process", {"text": "ok", "number": 1}).json == {
            "text": "ok",
            "number": 1,
        }
