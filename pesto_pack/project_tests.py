"""`pesto-pack test`: the original's `pesto test`, as one pytest run of this plugin.

The CLI builds the image when it is missing, then calls `run_project_tests`. Unlike the
original, which never failed, the exit status says whether the service answered what its
test folders expect; `results.json` is still written in the original's place and shape.
"""

import importlib.util
from pathlib import Path

import pytest

from pesto_pack import project as projects
from pesto_pack.errors import PestoError, ProjectError


def run_project_tests(
    project_dir: Path,
    profiles: list[str],
    image: str,
    results_path: Path | None,
    html_path: Path | None = None,
) -> int:
    """Run the project's test folders against `image`; pytest's exit status.

    `results_path` defaults to `~/.pesto/tests/NAME/TAG/results.json` (under the project's
    build workspace when build.json sets one), where the original wrote it. `html_path`, when
    given, gets pytest-html's report as one file, failing images' pictures included.
    """
    project = projects.load(project_dir, profiles)
    if not project.tests_dir.is_dir():
        raise ProjectError(
            f"{project.tests_dir} is missing: put the test folders there (test_1/input, "
            "test_1/output, ...) and expected_describe.json, as `pesto-pack init` does"
        )
    results_path = results_path or default_results_path(project, image)
    return int(
        pytest.main(
            [
                f"--rootdir={project.root}",
                f"--pesto-image={image}",
                f"--pesto-results={results_path}",
                *(f"--pesto-profile={profile}" for profile in profiles),
                *html_report_arguments(html_path),
                str(project.tests_dir),
            ]
        )
    )


def html_report_arguments(html_path: Path | None) -> list[str]:
    """pytest-html's options writing one self-contained file (none without a path); an error
    saying how to install pytest-html when it is missing, which `pesto-pack test` checks
    before building anything."""
    if html_path is None:
        return []
    if importlib.util.find_spec("pytest_html") is None:
        raise PestoError(
            f"--html {html_path} needs pytest-html, which is not installed: "
            "`pip install pytest-html`, then run the tests again"
        )
    return [f"--html={html_path}", "--self-contained-html"]


def default_results_path(project: projects.Project, image: str) -> Path:
    """`<workspace base>/tests/NAME/TAG/results.json`, as the original's TestRunner."""
    name, _, tag = image.rsplit("/", 1)[-1].partition(":")
    return project.workspace.parent.parent / "tests" / name / (tag or "latest") / "results.json"
