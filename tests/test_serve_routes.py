"""The informational routes: health, ready, describe, version, config, openapi, metrics."""

import json
import logging
import re

import pytest
from openapi_spec_validator import validate

from serve_support import PROJECTS, error_of, served

ORIGINAL_DESCRIBE_KEYS = {
    "title",
    "name",
    "version",
    "family",
    "description",
    "organization",
    "email",
    "resources",
    "asynchronous",
    "keywords",
    "template",
    "config",
    "input",
    "output",
    "_links",
}
ORIGINAL_DEFINITIONS = {"Image", "Images", "Polygon", "Polygons", "Metadata", "Metadatas"}


@pytest.fixture(scope="module")
def template():
    with served("template") as served_app:
        yield served_app


def test_health_answers_ok_as_text(template):
    app, _ = template
    response = app.get("/api/v1/health")
    assert (response.text, response.content_type) == ("OK", "text/plain")


def test_ready_answers_503_until_on_start_has_run_then_200():
    with served("echo", start=False) as (app, service):
        assert app.get("/api/v1/health").text == "OK"
        error = error_of(app.get("/api/v1/ready", status=503))
        assert "on_start() is running" in error["message"]
        assert app.get("/api/v1/ready", status=503).headers["Retry-After"]
        assert "on_start" in error_of(app.post_json("/api/v1/process", {"text": "a"}, status=503))["message"]
        service.start()
        assert app.get("/api/v1/ready").text == "OK"


def test_ready_answers_503_once_the_service_stops():
    with served("echo") as (app, service):
        service.stop()
        assert "shutting down" in error_of(app.get("/api/v1/ready", status=503))["message"]


def test_describe_has_the_original_structure(template):
    app, _ = template
    describe = app.get("/api/v1/describe", extra_environ={"HTTP_HOST": "pesto.example:9000"}).json
    assert set(describe) == ORIGINAL_DESCRIBE_KEYS
    assert describe["config"]["required"] == ["category"]  # config_schema.json, as the original
    for side in ("input", "output"):
        schema = describe[side]
        assert set(schema) >= {
            "$schema",
            "title",
            "type",
            "description",
            "definition",
            "definitions",
            "properties",
        }
        assert schema["type"] == "object" and schema["description"] == "Expected format"
        assert set(schema["definitions"]) == ORIGINAL_DEFINITIONS | {"geojson"}
    assert describe["input"]["required"] == ["image"]
    assert "required" not in describe["output"]  # an empty list is left out, as the original does
    assert describe["output"]["properties"]["image_list"] == {
        "$ref": "#/definitions/Images",
        "description": "The input image, then flipped upside down",
    }
    links = describe["_links"]
    assert set(links) == {"self", "execution", "config", "version", "health"}
    assert links["execution"] == {
        "relation": "Processing resource",
        "href": "http://pesto.example:9000/api/v1/process",
        "type": "Complex type, see output in describe content for more information",
        "method": "POST",
    }
    assert links["health"]["href"] == "http://pesto.example:9000/api/v1/health"


@pytest.mark.parametrize("project", ["echo", "template"])
def test_describe_matches_the_projects_expected_describe(project):
    resources = PROJECTS / project / "pesto/tests/resources"
    expected = json.loads((resources / "expected_describe.json").read_text())
    with served(project, start=False) as (app, _):
        actual = app.get("/api/v1/describe", extra_environ={"HTTP_HOST": "localhost:8080"}).json
    assert actual == expected


def test_describe_says_asynchronous_with_the_stateful_profile():
    with served("echo", ("stateful",)) as (app, _):
        assert app.get("/api/v1/describe").json["asynchronous"] is True


def test_version_is_version_json_after_the_service_version(template):
    app, _ = template
    version = app.get("/api/v1/version").json
    assert list(version)[:3] == ["version", "notice", "__packaging"]
    assert version["version"] == "1.0.0"
    assert version["__packaging"].startswith("packaged with pesto-toolkit")


def test_config_is_config_json(template):
    app, _ = template
    assert app.get("/api/v1/config").json == {"category": "box"}


@pytest.mark.parametrize("profiles", [(), ("stateful",)], ids=["stateless", "stateful"])
def test_openapi_is_valid_and_lists_every_route(profiles):
    with served("template", profiles) as (app, _):
        document = app.get("/api/v1/openapi.json").json
        validate(document)
        routes = {
            (route.method.lower(), re.sub(r"<(\w+)(:\w+)?>", r"{\1}", route.rule))
            for route in app.app.app.routes
        }
        documented = {(method, path) for path, item in document["paths"].items() for method in item}
        assert routes == documented
        assert app.get("/api/v1/openapi").json == document


def test_openapi_describes_this_services_inputs_and_outputs(template):
    app, _ = template
    schemas = app.get("/api/v1/openapi.json").json["components"]["schemas"]
    assert schemas["Input"]["required"] == ["image"]
    assert schemas["Input"]["properties"]["image"]["$ref"] == "#/components/schemas/Image"
    assert schemas["Output"]["properties"]["geojson"]["properties"]["features"]["items"]["properties"][
        "geometry"
    ] == {"$ref": "#/components/schemas/Polygon"}
    assert ORIGINAL_DEFINITIONS <= set(schemas)


def test_metrics_count_requests_by_route_and_status_and_time_processing():
    with served("echo") as (app, _):
        app.post_json("/api/v1/process", {"text": "a"})
        app.post_json("/api/v1/process", {}, status=400)
        app.get("/no/such/route", status=404)
        metrics = app.get("/metrics")
    assert metrics.content_type == "text/plain"
    text = metrics.text
    assert 'pesto_http_requests_total{method="POST",route="/api/v1/process",status="200"} 1.0' in text
    assert 'pesto_http_requests_total{method="POST",route="/api/v1/process",status="400"} 1.0' in text
    assert 'pesto_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert "pesto_process_seconds_count 1.0" in text
    assert "pesto_queue_depth 0.0" in text
    assert "pesto_slots 1.0" in text


def test_metrics_count_the_requests_answered_before_the_start_made_them():
    # The registry is made in the start thread (prometheus_client after the port opens):
    # health probes answered before it are counted when it is made, and after as usual.
    with served("echo", start=False) as (app, service):
        app.get("/api/v1/health")
        app.get("/api/v1/ready", status=503)
        assert service.metrics.registry is None
        service.start()
        app.get("/api/v1/health")
        text = app.get("/metrics").text
    assert 'pesto_http_requests_total{method="GET",route="/api/v1/health",status="200"} 2.0' in text
    assert 'pesto_http_requests_total{method="GET",route="/api/v1/ready",status="503"} 1.0' in text


def test_metrics_count_jobs_by_state():
    with served("echo", ("stateful",)) as (app, _):
        text = app.get("/metrics").text
    assert 'pesto_jobs{state="DONE"} 0.0' in text


def test_bottles_own_errors_have_the_json_shape(template):
    app, _ = template
    not_found = error_of(app.get("/api/v1/nothing", status=404))
    assert "/api/v1/openapi.json" in not_found["message"]
    not_allowed = app.delete("/api/v1/describe", status=405)
    assert "DELETE is not allowed on /api/v1/describe" in error_of(not_allowed)["message"]


def test_job_routes_do_not_exist_on_a_stateless_service(template):
    app, _ = template
    error_of(app.get("/api/v1/jobs", status=404))


def test_each_request_is_logged_with_method_path_status_and_duration(caplog):
    with served("echo") as (app, _), caplog.at_level(logging.INFO, "pesto_serve.access"):
        app.post_json("/api/v1/process", {"number": 1}, status=400)
    record = next(r for r in caplog.records if r.name == "pesto_serve.access")
    assert re.fullmatch(r"POST /api/v1/process 400 \d+\.\dms", record.getMessage())
    assert (record.method, record.path, record.status) == ("POST", "/api/v1/process", 400)
    assert record.duration_ms >= 0
