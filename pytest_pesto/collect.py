"""The collection tree: a `resources` folder, its `test_*` folders and `expected_describe.json`.

Each test folder is one item whose id is the folder's path (`pesto/tests/resources/test_1`),
so `pytest pesto/tests/resources/test_1`, `-k test_1`, `--lf` and junit XML name it as a
person would. A folder is read at collection, so that a bad one (no `input/`, an unreadable
image, an unknown extension) is a collection error naming the file while the others run.
"""

import json
from pathlib import Path

import pytest

from pesto_pack.client import RequestFailed
from pesto_pack.errors import PestoError
from pesto_pack.plugins import default_registry
from pytest_pesto import payload, report, results
from pytest_pesto.compare import (
    Comparison,
    compare_answers,
    compare_describe,
    types_of,
    without_link_hosts,
)
from pytest_pesto.pictures import SavedPictures, comparable_answer, readable_diff, save_pictures
from pytest_pesto.report import Mismatch, ServiceProblem
from pytest_pesto.session import pesto_run, service_client

DESCRIBE_FILE = "expected_describe.json"
TEST_FOLDER_PREFIX = "test_"
ACTUAL_FOLDER = "actual"
"""Where a failing test folder's actual answer is saved, beside `input/` and `output/`."""


def holds_test_data(folder: Path) -> bool:
    """Whether a `resources` folder holds PESTO test folders or an expected describe."""
    try:
        return any(
            (entry.name.startswith(TEST_FOLDER_PREFIX) and entry.is_dir()) or entry.name == DESCRIBE_FILE
            for entry in folder.iterdir()
        )
    except OSError:
        return False


class ResourcesFolder(pytest.Directory):
    """`pesto/tests/resources`: one item per test folder, one for the expected describe.

    Anything else in it is collected as pytest would anywhere else.
    """

    def collect(self):
        for path in sorted(self.path.iterdir()):
            if not self.session.isinitpath(path, with_parents=path.is_dir()):
                if self.ihook.pytest_ignore_collect(collection_path=path, config=self.config):
                    continue
            if path.is_dir() and path.name.startswith(TEST_FOLDER_PREFIX):
                yield self._test_folder(path)
            elif path.is_file() and path.name == DESCRIBE_FILE:
                yield self._describe(path)
            elif path.is_dir():
                collector = self.ihook.pytest_collect_directory(path=path, parent=self)
                if collector is not None:
                    yield collector
            elif path.is_file():
                yield from self.ihook.pytest_collect_file(file_path=path, parent=self)

    def _test_folder(self, path: Path):
        if not (path / "input").is_dir():
            shown = report.display(path, self.config.rootpath)
            return Unreadable.from_parent(
                self,
                path=path,
                problem=f"{shown} has no input/ folder: put the request's files in {shown}/input/"
                f" (one file or folder per input key) and the expected answer in {shown}/output/",
            )
        try:
            for part in ("input", "output"):
                if (path / part).is_dir():
                    payload.read_folder(path / part, default_registry(), check=True)
        except PestoError as error:
            return Unreadable.from_parent(self, path=path, problem=str(error))
        return FolderItem.from_parent(self, name=path.name, path=path, nodeid=_id(self, path))

    def _describe(self, path: Path):
        for describe in [path, *sorted(path.parent.glob(f"{path.stem}.*.json"))]:
            try:
                if not isinstance(json.loads(describe.read_text()), dict):
                    raise ValueError("a JSON object is expected")
            except (OSError, UnicodeDecodeError, ValueError) as error:
                problem = f"{describe}: not valid JSON ({error})"
                return Unreadable.from_parent(self, path=path, problem=problem)
        return DescribeItem.from_parent(self, name=path.name, path=path, nodeid=_id(self, path))


class InResources:
    """A node for a test folder, which pytest never collects as a directory of its own: it
    takes the hooks of the `resources` folder, so the project's conftest.py files apply."""

    @property
    def ihook(self):
        return self.parent.ihook


class Unreadable(InResources, pytest.File):
    """A test folder or file the plugin cannot read: a collection error saying why."""

    def __init__(self, *, problem: str, **kwargs):
        super().__init__(**kwargs)
        self.problem = problem

    def collect(self):
        raise self.CollectError(self.problem)


class ServiceItem(InResources, pytest.Item):
    """An item that asks the session's service something and compares the answer."""

    result_entry: dict | None = None
    """This item's results.json entry, once it compared an answer."""
    updated: tuple[str, ...] = ()
    """Files `--pesto-update` wrote or removed."""
    report_pictures: tuple[SavedPictures, ...] = ()
    """The pictures of a failed comparison, for the HTML report."""
    report_diff: str = ""
    """A unified diff of the JSON of a failed comparison, for the HTML report."""

    def setup(self) -> None:
        self.run = pesto_run(self.config)
        self.client = service_client(self.run)

    def runtest(self) -> None:
        try:
            self.check()
        except RequestFailed as error:
            raise ServiceProblem(self.run.service.explain(error)) from None

    def check(self) -> None:
        raise NotImplementedError

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, (Mismatch, ServiceProblem, PestoError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, self.nodeid

    def shown(self, path: Path) -> Path:
        return report.display(path, self.config.rootpath)

    def update_hint(self, expected: Path) -> str:
        return (
            f"if the service is right, accept its answer as the new {self.shown(expected)} "
            "with `pytest --pesto-update`, and review the change with `git diff`"
        )


class FolderItem(ServiceItem):
    """A `test_*` folder: send `input/` to the service, compare the answer with `output/`."""

    @property
    def result_name(self) -> str:
        return self.name

    def check(self) -> None:
        registry = default_registry()
        inputs, output, saved = self.path / "input", self.path / "output", self.path / ACTUAL_FOLDER
        actual = self.client.process(payload.read_folder(inputs, registry))
        if not isinstance(actual, dict):
            raise ServiceProblem(f"the service answered {type(actual).__name__}, not a JSON object")
        if saved.exists():
            payload.remove(saved)  # what an earlier failing run saved
        expected = payload.read_folder(output, registry) if output.is_dir() else {}
        properties = self.client.describe().get("output", {}).get("properties", {})
        types = types_of(actual.keys() | expected.keys(), properties, registry)
        if not output.is_dir() and not self.run.settings.update:
            raise Mismatch(report.no_expected_output(self.shown(output)))
        comparison = compare_answers(expected, actual, types, self.run.settings.tolerance)
        if comparison.matches:
            self.result_entry = dict(results.NO_DIFFERENCE)
        elif self.run.settings.update:
            self.result_entry = {"Updated": self._update(comparison, actual, types)}
        else:
            self._save(saved, actual, types)
            files = {key: (payload.find_key(output, key), payload.find_key(saved, key)) for key in actual}
            self.result_entry = results.comparison_entry(comparison, expected, actual, types, files)
            pictures = self._draw(saved, comparison, expected, actual, types)
            for each in self.report_pictures:
                unequal = self.result_entry["KeysNotEqual"][each.key]
                unequal.setdefault("pictures", []).extend([str(each.sheet), str(each.difference)])
            self.report_diff = readable_diff(
                comparable_answer(expected, types),
                comparable_answer(actual, types),
                f"{self.shown(output)}/",
                f"{self.shown(saved)}/",
            )
            raise Mismatch(
                report.answer_mismatch(
                    f"the answer to {self.shown(inputs)}/",
                    comparison,
                    f"{self.shown(output)}/",
                    f"{self.shown(saved)}/",
                    self.update_hint(output),
                    pictures,
                )
            )

    @staticmethod
    def _save(folder: Path, actual: dict, types: dict) -> None:
        """Write the whole actual answer to `folder`, to compare with `output/` file by file."""
        for key, value in actual.items():
            try:
                payload.write_key(folder, key, value, types[key])
            except PestoError:
                continue  # a type that cannot write files: its value is in the report

    def _draw(
        self, folder: Path, comparison: Comparison, expected: dict, actual: dict, types: dict
    ) -> list[str]:
        """Save the pictures of each differing key beside the actual answer; the report's lines
        naming them (or saying why a key has none: drawing never hides the mismatch)."""
        lines, drawn = [], []
        for key in comparison.differing:
            try:
                saved = save_pictures(
                    folder, key, types[key], expected[key], actual[key], self.run.settings.tolerance
                )
            except Exception as error:  # noqa: BLE001 (a plugin type may raise anything; the mismatch must still be reported)
                lines.append(f"{key}: no pictures ({type(error).__name__}: {error})")
                continue
            drawn += saved
            lines += [
                f"{each.label}: see {self.shown(each.sheet)} (expected | actual | difference)"
                f" and {each.difference.name}"
                for each in saved
            ]
        self.report_pictures = tuple(drawn)
        return lines

    def _update(self, comparison: Comparison, actual: dict, types: dict) -> list[str]:
        """Rewrite what differs in `output/` from the actual answer; leave equal keys alone."""
        output = self.path / "output"
        changed = []
        for key in [*comparison.differing, *comparison.unexpected]:
            changed.append(str(self.shown(payload.write_key(output, key, actual[key], types[key]))))
        for key in comparison.missing:
            stale = payload.find_key(output, key)
            payload.remove(stale)
            changed.append(f"{self.shown(stale)} (removed)")
        self.updated = tuple(changed)
        return sorted([*comparison.differing, *comparison.unexpected, *comparison.missing])


class DescribeItem(ServiceItem):
    """`expected_describe.json` against `GET /api/v1/describe`."""

    result_name = "describe"

    def check(self) -> None:
        expected = self.expected()
        actual = self.client.describe(refresh=True)
        registry = default_registry()
        comparison = compare_describe(expected, actual, registry, self.run.settings.tolerance)
        if comparison.matches:
            self.result_entry = dict(results.NO_DIFFERENCE)
        elif self.run.settings.update:
            written = self.write_expected(actual)
            self.updated = (str(self.shown(written)),)
            self.result_entry = {"Updated": [written.name]}
        else:
            types = types_of(expected.keys() | actual.keys(), {}, registry)
            self.result_entry = results.comparison_entry(comparison, expected, actual, types, {})
            self.report_diff = readable_diff(
                without_link_hosts(expected),
                without_link_hosts(actual),
                self.path.name,
                "GET /api/v1/describe",
            )
            raise Mismatch(
                report.answer_mismatch(
                    "GET /api/v1/describe",
                    comparison,
                    self.path.name,
                    None,
                    self.update_hint(self.path),
                )
            )

    def profile_files(self) -> list[Path]:
        """`expected_describe.<profile>.json` of each profile in effect that has one, in order."""
        candidates = (describe_for_profile(self.path, p) for p in self.run.settings.profiles)
        return [path for path in candidates if path.is_file()]

    def expected(self) -> dict:
        """`expected_describe.json` updated key by key by each profile's file, as pesto/api files."""
        expected = json.loads(self.path.read_text())
        for path in self.profile_files():
            expected.update(json.loads(path.read_text()))
        return expected

    def write_expected(self, actual: dict) -> Path:
        """With no profile, rewrite expected_describe.json; with profiles, write the last
        profile's file with the keys where the service differs from expected_describe.json."""
        if not self.run.settings.profiles:
            target, content = self.path, actual
        else:
            base = without_link_hosts(json.loads(self.path.read_text()))
            comparable = without_link_hosts(actual)
            target = describe_for_profile(self.path, self.run.settings.profiles[-1])
            content = {key: actual[key] for key in actual if base.get(key) != comparable[key]}
        target.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n")
        return target


def describe_for_profile(describe: Path, profile: str) -> Path:
    return describe.with_name(f"{describe.stem}.{profile}.json")


def _id(parent: pytest.Collector, path: Path) -> str:
    """The id of an item for `path` in `parent`'s folder: the path, as a folder's own id."""
    return f"{parent.nodeid}/{path.name}" if parent.nodeid else path.name
