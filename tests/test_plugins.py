"""Third-party plugins, installed the way pip installs them, found through the entry points.

The packages under tests/plugin_package/ are copied into a site folder with a `*.dist-info`
holding their `entry_points.txt` (group `pesto`), and that folder is put on sys.path: what
`importlib.metadata` then finds is exactly what an installed wheel gives.
"""

import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from pesto_pack import hookimpl, project
from pesto_pack.errors import PestoError, ProjectError
from pesto_pack.plugins import Registry, default_registry, make_plugin_manager
from pesto_pack.types.base import DecodeSettings, PayloadType, Result

PLUGIN_PACKAGES = Path(__file__).parent / "plugin_package"


@pytest.fixture
def site(tmp_path, monkeypatch):
    """An empty site folder on sys.path; installed plugin modules are forgotten afterwards."""
    folder = tmp_path / "site-packages"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    default_registry.cache_clear()
    yield folder
    default_registry.cache_clear()
    for name in [m for m in sys.modules if m.startswith("pesto_table")]:
        del sys.modules[name]


def install(site: Path, package: str, entry_point: str) -> None:
    """Install `package` as a distribution whose `pesto` entry point `entry_point` names it."""
    shutil.copytree(PLUGIN_PACKAGES / package, site / package)
    dist_info = site / f"{package}-0.1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {package.replace('_', '-')}\nVersion: 0.1.0\n"
    )
    (dist_info / "entry_points.txt").write_text(f"[pesto]\n{entry_point} = {package}\n")


@pytest.fixture
def registry(site) -> Registry:
    install(site, "pesto_table", "table")
    return Registry.from_plugin_manager(make_plugin_manager())


def test_an_installed_plugin_is_registered_after_the_builtins(registry):
    assert list(registry.types)[-1] == "Table"
    assert "table" in {name for name, _ in make_plugin_manager().list_name_plugin()}


def test_without_the_entry_points_the_plugin_is_not_loaded(site):
    install(site, "pesto_table", "table")
    manager = make_plugin_manager(load_entry_points=False)
    assert "Table" not in Registry.from_plugin_manager(manager).types


def test_the_plugins_definition_is_described(registry):
    assert registry.definitions()["Table"] == {
        "type": "string",
        "description": "A table as CSV text, one row a line",
    }
    assert default_registry().definitions()["Table"]["type"] == "string"


def test_a_project_may_refer_to_the_plugins_definition(registry, tmp_path):
    root = tmp_path / "project"
    write_project(root, {"table": {"$ref": "#/definitions/Table"}, "required": ["table"]})
    loaded = project.load(root, registry=registry)
    assert "Table" in loaded.api.definitions(registry)
    assert registry.type_for_property(loaded.api.input_schema["table"]).name == "Table"
    without_plugin = Registry.from_plugin_manager(make_plugin_manager(load_entry_points=False))
    with pytest.raises(ProjectError, match="'#/definitions/Table', which is not a known"):
        project.load(root, registry=without_plugin)


def test_the_plugins_type_decodes_encodes_and_reads_its_test_files(registry, tmp_path):
    table = registry.types["Table"]
    rows = table.decode("name,area\nfield,3.5\n", DecodeSettings())
    assert rows == [["name", "area"], ["field", "3.5"]]
    assert table.encode(rows) == "name,area\nfield,3.5\n"
    assert table.to_result("a\n") == Result(b"a\n", "text/csv")
    (tmp_path / "input.csv").write_text("a,b\n1,2\n")
    assert registry.type_for_file_suffix(".csv") is table
    assert table.read_file(tmp_path / "input.csv") == "a,b\n1,2\n"
    assert table.read_file(table.write_file("x\n", tmp_path / "output")) == "x\n"


def test_the_plugins_profile_changes_the_build_settings(registry, tmp_path):
    root = tmp_path / "project"
    write_project(root, {"n": {"type": "integer"}, "required": []})
    assert project.available_profiles(root, registry) == ["debug", "gpu", "stateful"]
    loaded = project.load(root, ["stateful", "debug"], registry=registry)
    assert loaded.tag == "svc:1.0.0-stateful-debug"
    assert loaded.build.environments["DEBUG"] == "1"
    assert loaded.build.environments["PESTO_JOBS_DIR"] == "/var/lib/pesto/jobs"
    assert loaded.build.labels["org.example.debug"] == "true"


def test_two_plugins_registering_one_name_is_an_error_naming_both(site):
    install(site, "pesto_table", "table")
    install(site, "pesto_table_clone", "table-clone")
    manager = make_plugin_manager()
    with pytest.raises(PestoError) as caught:
        Registry.from_plugin_manager(manager)
    message = str(caught.value)
    assert message.startswith("the payload type 'Table' is registered by two plugins, ")
    assert "'table'" in message and "'table-clone'" in message
    assert message.endswith("; uninstall one of them")


def test_a_plugin_cannot_replace_a_builtin_type():
    @hookimpl
    def register_payload_types(register):
        register(PayloadType("Image"))

    manager = make_plugin_manager(load_entry_points=False)
    manager.register(SimpleNamespace(register_payload_types=register_payload_types), "impostor")
    with pytest.raises(PestoError, match="'pesto_pack.types.images' and 'impostor'"):
        Registry.from_plugin_manager(manager)


def write_project(root: Path, input_schema: dict) -> None:
    files = {
        "api/description.json": {"title": "svc"},
        "api/input_schema.json": input_schema,
        "api/output_schema.json": {"required": []},
        "build/build.json": {"name": "svc", "version": "1.0.0"},
        "build/requirements.json": {"dockerBaseImage": "python:3.11-slim"},
    }
    for relative, value in files.items():
        path = root / "pesto" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


def test_schemagen_writes_a_reference_to_the_plugins_definition(registry, tmp_path):
    from pesto_pack import schemagen

    root = tmp_path / "project"
    write_project(root, {"required": []})
    (root / "algorithm").mkdir()
    (root / "algorithm" / "__init__.py").write_text("")
    (root / "algorithm" / "input_output.py").write_text(
        "from dataclasses import dataclass\n"
        "from pesto_pack.fields import definition, field\n"
        "@dataclass\nclass Input:\n"
        "    table: list = definition('Table', 'rows to sum', required=True)\n"
        "@dataclass\nclass Output:\n    total: float = field('their sum')\n"
    )
    input_schema, _ = schemagen.generate(root)
    assert input_schema == {
        "table": {"$ref": "#/definitions/Table", "description": "rows to sum"},
        "required": ["table"],
    }
