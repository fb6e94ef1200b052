"""`pesto-pack init`: a new project from the template in `pesto_pack/templates/project`.

The template is a working project whose text files hold `{{name}}`, `{{version}}`,
`{{description}}`, `{{organization}}` and `{{email}}`. In JSON files a value is written
JSON-escaped, so a description with quotes still makes valid files. The answers come from
prompts with defaults, or from options alone with `--no-input`.
"""

import json
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pesto_pack.errors import PestoError
from pesto_pack.references import IMAGE_NAME, IMAGE_TAG

TEMPLATE = Path(__file__).parent / "templates" / "project"
TEXT_SUFFIXES = {".json", ".md", ".ini"}
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@dataclass(frozen=True)
class Question:
    key: str
    prompt: str
    check: Callable[[str], str | None] = lambda value: None
    """Why an answer is refused, or None."""


def _check_name(value: str) -> str | None:
    if not IMAGE_NAME.match(value):
        return "use lowercase letters, digits and . _ - (it names the image)"
    return None


def _check_version(value: str) -> str | None:
    if not IMAGE_TAG.match(value):
        return "use letters, digits and . _ - (it tags the image), e.g. 1.0.0"
    return None


QUESTIONS = (
    Question("name", "Service name", _check_name),
    Question("version", "Version", _check_version),
    Question("description", "One-line description"),
    Question("organization", "Organization"),
    Question("email", "Contact e-mail"),
)


def defaults(target: Path) -> dict[str, str]:
    """What a bare `pesto-pack init DIR --no-input` answers: the name comes from DIR."""
    name = re.sub(r"[^a-z0-9]+", "-", target.resolve().name.lower()).strip("-") or "my-service"
    return {
        "name": name,
        "version": "1.0.0",
        "description": "A PESTO service",
        "organization": "",
        "email": "",
    }


def answers(
    target: Path, given: Mapping[str, str | None], ask: Callable[[str], str] | None
) -> dict[str, str]:
    """The template's values: `given` options first, then prompts (when `ask`), then defaults."""
    values = defaults(target)
    for question in QUESTIONS:
        value = given.get(question.key)
        if value is None and ask is not None:
            value = _prompt(question, values[question.key], ask)
        if value is not None:
            values[question.key] = value
        problem = question.check(values[question.key])
        if problem:
            raise PestoError(f"{question.key} {values[question.key]!r}: {problem}")
    return values


def create(target: Path, values: Mapping[str, str]) -> list[Path]:
    """Write the project into `target` (absent or empty); the files written."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise PestoError(f"{target} exists and is not an empty folder; choose a new folder")
    shutil.copytree(TEMPLATE, target, ignore=IGNORED, dirs_exist_ok=True)
    written = sorted(path for path in target.rglob("*") if path.is_file())
    for path in written:
        if path.suffix in TEXT_SUFFIXES:
            text = path.read_text(encoding="utf-8")
            path.write_text(_render(text, values, as_json=path.suffix == ".json"), encoding="utf-8")
    return written


def _render(text: str, values: Mapping[str, str], as_json: bool) -> str:
    def value(match: re.Match) -> str:
        raw = values[match[1]]
        return json.dumps(raw, ensure_ascii=False)[1:-1] if as_json else raw

    return PLACEHOLDER.sub(value, text)


def _prompt(question: Question, default: str, ask: Callable[[str], str]) -> str:
    while True:
        answer = ask(f"{question.prompt} [{default}]: ").strip() or default
        problem = question.check(answer)
        if problem is None:
            return answer
        print(f"  {answer!r}: {problem}")
