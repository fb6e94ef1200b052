"""PESTO_* variables: defaults, parsing, and errors that name the variable."""

from pathlib import Path

import pytest

from pesto_pack.errors import PestoError
from pesto_serve.settings import Settings


def test_defaults_are_the_in_image_ones():
    settings = Settings.from_env({})
    assert settings == Settings()
    assert (settings.project_dir, settings.config_dir) == (Path("/opt/pesto/project"), Path("/etc/pesto"))
    assert (settings.host, settings.port, settings.slots, settings.queue_size) == ("0.0.0.0", 8080, 1, 32)
    assert settings.max_body_bytes == 200 * 1024 * 1024
    assert settings.uri_allowlist == () and settings.jobs_dir is None
    assert (settings.process_timeout, settings.log_format, settings.grace_period) == (0.0, "text", 10.0)


def test_every_variable_is_read():
    settings = Settings.from_env(
        {
            "PESTO_PROJECT_DIR": "/p",
            "PESTO_CONFIG_DIR": "/c",
            "PESTO_HOST": "127.0.0.1",
            "PESTO_PORT": "9000",
            "PESTO_SLOTS": "4",
            "PESTO_QUEUE_SIZE": "0",
            "PESTO_MAX_BODY_BYTES": "1_000",
            "PESTO_URI_ALLOWLIST": "file:///data/, https://x.org/",
            "PESTO_MAX_IMAGE_PIXELS": "100",
            "PESTO_JOBS_DIR": "/j",
            "PESTO_PROCESS_TIMEOUT": "2.5",
            "PESTO_LOG_FORMAT": "JSON",
            "PESTO_GRACE_PERIOD": "3",
        }
    )
    assert settings == Settings(
        project_dir=Path("/p"),
        config_dir=Path("/c"),
        host="127.0.0.1",
        port=9000,
        slots=4,
        queue_size=0,
        max_body_bytes=1000,
        uri_allowlist=("file:///data/", "https://x.org/"),
        max_image_pixels=100,
        jobs_dir=Path("/j"),
        process_timeout=2.5,
        log_format="json",
        grace_period=3.0,
    )
    assert settings.decode_settings.uri_allowlist == ("file:///data/", "https://x.org/")
    assert settings.decode_settings.max_image_pixels == 100


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("PESTO_SLOTS", "0", "PESTO_SLOTS='0' is not valid: set it to a whole number at least 1"),
        ("PESTO_PORT", "http", "PESTO_PORT='http' is not valid"),
        ("PESTO_PORT", "70000", "at most 65535"),
        ("PESTO_PROCESS_TIMEOUT", "-1", "PESTO_PROCESS_TIMEOUT='-1' is not valid: set it to a number"),
        ("PESTO_LOG_FORMAT", "xml", "set it to one of text, json"),
    ],
)
def test_a_bad_value_names_the_variable_and_what_to_set(name, value, expected):
    with pytest.raises(PestoError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env({name: value})


def test_an_empty_value_counts_as_unset():
    assert Settings.from_env({"PESTO_SLOTS": "", "PESTO_JOBS_DIR": " "}) == Settings()


def test_a_jobs_folder_that_cannot_be_made_is_refused_at_start(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(PestoError, match="set PESTO_JOBS_DIR to a writable folder"):
        Settings(jobs_dir=tmp_path / "a-file" / "jobs").jobs_folder()


def test_the_jobs_folder_is_made_or_a_temporary_one(tmp_path, monkeypatch):
    assert Settings(jobs_dir=tmp_path / "a" / "b").jobs_folder().is_dir()
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    temporary = Settings().jobs_folder()
    assert temporary.parent == tmp_path and temporary.name.startswith("pesto-jobs-")


def test_pesto_serve_takes_its_defaults_from_the_environment(monkeypatch):
    from pesto_serve.cli import parse_args, settings_for

    monkeypatch.setenv("PESTO_PORT", "9123")
    monkeypatch.setenv("PESTO_SLOTS", "3")
    settings = settings_for(parse_args(["project"]))
    assert (settings.host, settings.port, settings.slots) == ("127.0.0.1", 9123, 3)

    monkeypatch.setenv("PESTO_HOST", "::1")
    settings = settings_for(parse_args(["project", "--port", "9200", "--slots", "2"]))
    assert (settings.host, settings.port, settings.slots) == ("::1", 9200, 2)


def test_the_connection_and_memory_settings_are_read():
    settings = Settings.from_env(
        {
            "PESTO_MEMORY_BODY_BYTES": "1_048_576",
            "PESTO_HEADER_TIMEOUT": "2.5",
            "PESTO_IDLE_TIMEOUT": "30",
            "PESTO_MAX_CONNECTIONS": "200",
        }
    )
    assert (settings.memory_body_bytes, settings.header_timeout) == (1_048_576, 2.5)
    assert (settings.idle_timeout, settings.max_connections) == (30.0, 200)
    with pytest.raises(PestoError, match="PESTO_MAX_CONNECTIONS"):
        Settings.from_env({"PESTO_MAX_CONNECTIONS": "0"})
    assert Settings().header_timeout < 120  # far below waitress's own 120 s
