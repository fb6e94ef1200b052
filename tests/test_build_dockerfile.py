"""The two Dockerfiles: layer order, offline installs, the image contract, safe quoting."""

import json

import pytest

from pesto_pack.build.dockerfile import (
    DependenciesRecipe,
    ServiceRecipe,
    dependencies_dockerfile,
    service_dockerfile,
)
from pesto_pack.errors import ProjectError

RECIPE = DependenciesRecipe(
    base_image="registry.example:5000/python:3.11",
    wheel_folders=["wheels/runtime-deps", "wheels/project-deps"],
    resources=[("resources/0-model", "/opt/model/"), ("resources/1-labels", "/opt/labels/")],
    volumes=["/var/lib/pesto/jobs"],
)


def instructions(text: str) -> list[str]:
    """Each instruction on one line, comments and continuations folded."""
    folded = text.replace("\\\n", " ")
    return [line for line in folded.splitlines() if line.strip() and not line.startswith("#")]


def test_dependencies_are_installed_offline_in_a_first_stage_in_layer_order():
    lines = instructions(dependencies_dockerfile(RECIPE))
    assert lines[0] == "FROM registry.example:5000/python:3.11 AS venv"
    order = [
        "RUN python3 -m venv /opt/pesto/venv",
        "COPY wheels/runtime-deps/",
        "RUN /opt/pesto/venv/bin/pip install --no-index",
        "COPY wheels/project-deps/",
        "RUN /opt/pesto/venv/bin/pip install --no-index",
        "FROM registry.example:5000/python:3.11",
        "COPY --from=venv /opt/pesto/venv /opt/pesto/venv",
        "COPY resources/0-model/ /opt/model/",
        "COPY resources/1-labels/ /opt/labels/",
    ]
    found, start = [], 0
    for prefix in order:
        start = next(i for i in range(start, len(lines)) if lines[i].startswith(prefix)) + 1
        found.append(start)
    assert found == sorted(found)
    assert all("--no-index" in line for line in lines if "pip install" in line)


def test_the_runtime_comes_first_on_the_virtualenv_path():
    run = next(line for line in instructions(dependencies_dockerfile(RECIPE)) if "pesto-runtime.pth" in line)
    command = json.loads(run.removeprefix("RUN "))
    assert command[:2] == ["/opt/pesto/venv/bin/python", "-c"]
    assert 'sys.path.insert(0, "/opt/pesto/runtime")' in command[2]


def test_only_the_virtualenv_leaves_the_wheel_stage():
    final_stage = dependencies_dockerfile(RECIPE).split("\nFROM registry.example:5000/python:3.11\n")[1]
    assert "wheels/" not in final_stage


def test_dependencies_image_runs_the_runtime_as_a_non_root_user_with_a_health_check():
    lines = instructions(dependencies_dockerfile(RECIPE))
    text = "\n".join(lines)
    assert "EXPOSE 8080" in lines
    assert "USER pesto" in lines and "useradd --system --uid 10001" in text
    assert lines[-1] == 'CMD ["python", "-m", "pesto_serve"]'
    health = next(line for line in lines if line.startswith("HEALTHCHECK"))
    command = json.loads(health.split(" CMD ", 1)[1])
    assert command[:2] == ["python", "-c"] and "/api/v1/ready" in command[2]
    assert "PATH=/opt/pesto/venv/bin:${PATH:-/usr/local/sbin:" in text
    assert 'PESTO_HOST="0.0.0.0"' in text and 'PESTO_CONFIG_DIR="/etc/pesto"' in text


def test_volumes_are_made_for_the_service_user_before_they_are_declared():
    lines = instructions(dependencies_dockerfile(RECIPE))
    make = next(i for i, line in enumerate(lines) if "mkdir -p /var/lib/pesto/jobs" in line)
    assert "chown pesto:pesto /var/lib/pesto/jobs" in lines[make]
    assert lines.index('VOLUME ["/var/lib/pesto/jobs"]') > make


def test_no_volume_without_a_stateful_profile():
    text = dependencies_dockerfile(DependenciesRecipe("base:1", ["wheels/runtime-deps"]))
    assert "VOLUME" not in text and "mkdir" not in text


def test_service_image_puts_the_code_last_after_config_and_runtime():
    lines = instructions(
        service_dockerfile(
            ServiceRecipe(
                "svc-deps:0123",
                {"TORCH_HOME": "/opt/torch"},
                {"org.pesto.name": "svc"},
            )
        )
    )
    assert lines[0] == "FROM svc-deps:0123"
    assert lines[1] == "COPY runtime/ /opt/pesto/runtime/"
    assert lines[-2] == "COPY etc/pesto/ /etc/pesto/"
    assert lines[-1] == "COPY project/ /opt/pesto/project/"
    assert not any(line.startswith("RUN") for line in lines), "a code-only rebuild runs nothing"


def test_environment_is_quoted_and_may_expand_variables_but_labels_may_not():
    text = service_dockerfile(
        ServiceRecipe(
            "svc-deps:0123",
            {"GREETING": 'say "hi" \\ there', "PYTHONPATH": "$PYTHONPATH:/opt/lib"},
            {"org.opencontainers.image.description": "costs $5"},
        )
    )
    assert 'GREETING="say \\"hi\\" \\\\ there"' in text
    assert 'PYTHONPATH="$PYTHONPATH:/opt/lib"' in text
    assert '"org.opencontainers.image.description"="costs \\$5"' in text


@pytest.mark.parametrize("name", ["1ABC", "WITH-DASH", "has space", ""])
def test_invalid_environment_variable_name_is_refused(name):
    with pytest.raises(ProjectError, match="environment variable name"):
        service_dockerfile(ServiceRecipe("d:1", {name: "x"}))


def test_a_new_line_in_a_value_is_refused():
    with pytest.raises(ProjectError, match="control characters"):
        service_dockerfile(ServiceRecipe("d:1", {"A": "two\nlines"}))


def test_the_virtualenv_is_trimmed_in_the_wheel_stage_before_it_is_copied():
    lines = instructions(dependencies_dockerfile(RECIPE))
    trim = next(i for i, line in enumerate(lines) if "trimmed the virtualenv" in line)
    last_install = max(i for i, line in enumerate(lines) if "pip install" in line)
    copy = next(i for i, line in enumerate(lines) if line.startswith("COPY --from=venv"))
    assert last_install < trim < copy


def test_the_trim_removes_tests_headers_test_programs_and_pip_and_keeps_the_code(tmp_path):
    import subprocess
    import sys
    import sysconfig

    from pesto_pack.build.dockerfile import TRIM_VENV

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    assert site.is_dir(), sysconfig.get_paths()
    kept = [
        "pkg/__init__.py",
        "pkg/testing/__init__.py",
        "pkg/lib/libpkg.so",
        "pkg/bin/tool",
        "tests/__init__.py",
        "pkg/__pycache__/mod.cpython-311.pyc",
    ]
    removed = [
        "pkg/tests/test_a.py",
        "pkg/sub/test/data.bin",
        "pkg/include/pkg.h",
        "pkg/include/x.hpp",
        "pkg/lib/libpkg.a",
        "pkg/bin/StoreTest",
        "pip/__init__.py",
        "pip-24.0.dist-info/RECORD",
    ]
    for name in kept + removed:
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(b"x" * 100)
    (venv / "bin" / "pip3").write_text("#!/bin/sh\n")
    result = subprocess.run([python, "-c", TRIM_VENV], capture_output=True, text=True, check=True)
    assert "trimmed the virtualenv" in result.stdout
    assert [name for name in kept if not (site / name).exists()] == []
    assert [name for name in removed if (site / name).exists()] == []
    assert not (site / "pip").exists() and not (venv / "bin" / "pip3").exists()
