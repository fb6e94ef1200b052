"""Log lines: one per request, in text or JSON, written in batches by a background thread."""

import io
import json
import logging
import re

import pytest

from pesto_serve import logs


@pytest.fixture
def configured():
    """The service's logging set up as `pesto-serve` does, then the test's own restored."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level

    def configure(log_format: str) -> io.StringIO:
        logs.configure(log_format)
        stream = io.StringIO()
        root.handlers[0].stream = stream
        return stream

    yield configure
    for handler in root.handlers:
        handler.close()
    root.handlers, root.level = saved


def test_text_lines_for_records_and_access_lines(configured):
    stream = configured("text")
    logging.getLogger("pesto_serve.service").warning("slot %d is busy", 1)
    logs.log_access("POST", "/api/v1/process", 200, 1.234)
    logging.getLogger().handlers[0].flush()
    record, access = stream.getvalue().splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert re.fullmatch(stamp + r" WARNING pesto_serve\.service: slot 1 is busy", record)
    assert re.fullmatch(stamp + r" INFO pesto_serve\.access: POST /api/v1/process 200 1\.2ms", access)


def test_json_lines_carry_the_request_fields(configured):
    stream = configured("json")
    logs.log_access("GET", "/api/v1/health", 200, 0.5)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("pesto_serve.service").exception("process() raised")
    logging.getLogger().handlers[0].flush()
    access, error = (json.loads(line) for line in stream.getvalue().splitlines())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", access.pop("time"))
    assert access == {
        "level": "INFO",
        "logger": "pesto_serve.access",
        "message": "GET /api/v1/health 200 0.5ms",
        "method": "GET",
        "path": "/api/v1/health",
        "status": 200,
        "duration_ms": 0.5,
    }
    assert error["level"] == "ERROR" and "ValueError: boom" in error["traceback"]


def test_access_lines_go_through_logging_when_someone_else_listens(configured, caplog):
    stream = configured("text")
    logging.getLogger().addHandler(caplog.handler)
    with caplog.at_level(logging.INFO, logs.ACCESS_LOGGER):
        logs.log_access("GET", "/metrics", 200, 2.0)
    logging.getLogger().handlers[0].flush()
    assert stream.getvalue().endswith("pesto_serve.access: GET /metrics 200 2.0ms\n")
    record = next(r for r in caplog.records if r.name == logs.ACCESS_LOGGER)
    assert (record.getMessage(), record.status) == ("GET /metrics 200 2.0ms", 200)


def test_silencing_the_access_logger_silences_the_fast_path(configured):
    stream = configured("text")
    logging.getLogger(logs.ACCESS_LOGGER).setLevel(logging.WARNING)
    try:
        logs.log_access("GET", "/metrics", 200, 2.0)
        logging.getLogger().handlers[0].flush()
    finally:
        logging.getLogger(logs.ACCESS_LOGGER).setLevel(logging.NOTSET)
    assert stream.getvalue() == ""
