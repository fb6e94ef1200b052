"""schemagen: a project's `Input`/`Output` dataclasses to `pesto/api/{input,output}_schema.json`.

The files keep the original PESTO format, because describe, the service and existing users
read them: one property per dataclass field in field order, then a top-level `required`
list. A property is `{"type": ...}` for a JSON type, `{"$ref": "#/definitions/<Name>"}` for
a built-in definition, or the entry of `pesto/api/user_definitions.json` copied in place.
A `description` follows when the field was made with `field`, `definition` or
`user_definition` (the empty string when none was given, as the original writes it).

Where the original logged and went on, or crashed with a traceback, this raises
`ProjectError` saying which file, class and field is at fault and what to do.
"""

import copy
import dataclasses
import importlib.util
import json
import sys
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from pesto_pack.errors import ProjectError
from pesto_pack.fields import DESCRIPTION, REFERENCE, REQUIRED, TYPE, Definition
from pesto_pack.plugins import Registry, default_registry
from pesto_pack.project import INPUT_OUTPUT, PACKAGE, USER_DEFINITIONS, read_user_definitions

_SCHEMA_FILES = ("pesto/api/input_schema.json", "pesto/api/output_schema.json")
_MODULE_NAME = "_pesto_schemagen_input_output"
_HINT = "use definition(...) or user_definition(...)"


def generate(project_dir: Path) -> tuple[dict, dict]:
    """The input and output schemas of the project, without writing anything."""
    project_dir = project_dir.resolve()
    user_definitions = read_user_definitions(project_dir)
    with _imported_input_output(project_dir) as module:
        return (
            _class_schema(module, "Input", user_definitions),
            _class_schema(module, "Output", user_definitions),
        )


def write(project_dir: Path, force: bool = False) -> list[str]:
    """Write both schema files; one human-readable line per file says what happened.

    Both schemas are generated before anything is written, so an error leaves no file
    half-updated. Without `force`, a file that differs from the generated schema is kept.
    """
    schemas = generate(project_dir)
    return [
        _write_schema(project_dir, relative, schema, force)
        for relative, schema in zip(_SCHEMA_FILES, schemas, strict=True)
    ]


def _write_schema(project_dir: Path, relative: str, schema: dict, force: bool) -> str:
    """Write one schema file unless it exists and `force` is off; say which happened."""
    path = project_dir / relative
    text = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    existed = path.exists()
    if existed and not force:
        current = path.read_text(encoding="utf-8")
        if _same_json(current, schema):
            return f"{relative} is up to date; left as is"
        return (
            f"{relative} exists; not overwritten (use --force). Current content:\n{current}\n"
            f"Generated content:\n{text}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return f"{'overwrote' if existed else 'wrote'} {relative}"


def _same_json(text: str, schema: dict) -> bool:
    """Whether a file already holds this schema, key order included (formatting aside)."""
    try:
        return json.dumps(json.loads(text)) == json.dumps(schema)
    except json.JSONDecodeError:
        return False


@contextmanager
def _imported_input_output(project_dir: Path) -> Iterator[ModuleType]:
    """Import input_output.py by path, with the project's `algorithm` package importable.

    Afterwards sys.path and sys.modules are as before: modules loaded from the project are
    dropped (another project's `algorithm` must not be mistaken for this one's) and any
    `algorithm` modules hidden during the import are put back.
    """
    path = project_dir / INPUT_OUTPUT
    if not path.is_file():
        raise ProjectError(
            f"{project_dir}: {INPUT_OUTPUT} not found; schemagen reads the Input and Output "
            "dataclasses from it"
        )
    hidden = {name: sys.modules.pop(name) for name in list(sys.modules) if _in_package(name)}
    already_loaded = set(sys.modules)
    sys.path.insert(0, str(project_dir))
    try:
        yield _exec_module(path)
    finally:
        sys.path.remove(str(project_dir))
        for name in set(sys.modules) - already_loaded:
            if name == _MODULE_NAME or _loaded_from(sys.modules[name], project_dir):
                del sys.modules[name]
        sys.modules.update(hidden)


def _exec_module(path: Path) -> ModuleType:
    """Run input_output.py as a module registered under a private name (dataclasses need it)."""
    spec = importlib.util.spec_from_file_location(_MODULE_NAME, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE_NAME] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        raise ProjectError(f"{INPUT_OUTPUT} could not be imported: {type(err).__name__}: {err}") from err
    return module


def _in_package(module_name: str) -> bool:
    """Whether a module name belongs to the project's `algorithm` package."""
    return module_name == PACKAGE or module_name.startswith(PACKAGE + ".")


def _loaded_from(module: ModuleType, project_dir: Path) -> bool:
    """Whether a module (or namespace package) comes from a file inside the project."""
    locations = [getattr(module, "__file__", None), *getattr(module, "__path__", [])]
    return any(loc and Path(loc).resolve().is_relative_to(project_dir) for loc in locations)


def _class_schema(module: ModuleType, class_name: str, user_definitions: dict | None) -> dict:
    """One schema: the properties in field order, then the `required` field names."""
    fields = dataclasses.fields(_dataclass(module, class_name))
    schema = {}
    for f in fields:
        where = f"{INPUT_OUTPUT}: field '{f.name}' of {class_name}"
        if f.name == "required":
            raise ProjectError(f"{where} clashes with the schema's own 'required' list; rename it")
        schema[f.name] = _property(f, module, user_definitions, where)
    schema["required"] = [f.name for f in fields if f.metadata.get(REQUIRED)]
    return schema


def _dataclass(module: ModuleType, class_name: str) -> type:
    """The `Input` or `Output` class of input_output.py, checked to be a dataclass."""
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ProjectError(
            f"{INPUT_OUTPUT} defines no {class_name}; schemagen needs the Input and Output "
            "dataclasses that Process.process takes and returns"
        )
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise ProjectError(f"{INPUT_OUTPUT}: {class_name} is not a dataclass; decorate it with @dataclass")
    return cls


def _property(f: dataclasses.Field, module: ModuleType, user_definitions: dict | None, where: str) -> dict:
    """The schema of one field: its type from the helper's metadata, else from its annotation."""
    registry = default_registry()
    kind = f.metadata[TYPE] if TYPE in f.metadata else _annotation(f, module, where)
    if f.metadata.get(REFERENCE):
        prop = _reference(kind.name if isinstance(kind, Definition) else kind, registry, where)
    elif isinstance(kind, str):
        prop = _user_definition(kind, user_definitions, where)
    elif payload_type := _type_of_annotation(kind, registry):
        prop = (
            {"$ref": f"#/definitions/{payload_type.name}"}
            if payload_type.definition is not None
            else {"type": payload_type.name}
        )
    else:
        raise ProjectError(
            f"{where} has type {_type_name(kind)}, which is neither a JSON type nor a PESTO "
            f"definition; {_HINT}"
        )
    if DESCRIPTION in f.metadata:
        prop["description"] = f.metadata[DESCRIPTION].strip()
    return prop


def _annotation(f: dataclasses.Field, module: ModuleType, where: str) -> Any:
    """A field's annotation, evaluated in its module if postponed (PEP 563 string annotations)."""
    if not isinstance(f.type, str):
        return f.type
    try:
        return eval(f.type, vars(module))  # what PEP 563 prescribes for reading such annotations
    except Exception as err:
        raise ProjectError(f"{where}: annotation {f.type!r} cannot be evaluated: {err}") from err


def _type_of_annotation(annotation: Any, registry: Registry):
    """The payload type whose `python_type` an annotation names (`list[str]` counts as `list`).

    The primitives map `str`, `int`, `float`, `bool`, `dict` and `list` (the original maps only
    the first three); a plugin's type can claim a Python class of its own the same way.
    """
    annotation = typing.get_origin(annotation) or annotation
    for payload_type in registry.types.values():
        if payload_type.python_type is not None and payload_type.python_type is annotation:
            return payload_type
    return None


def _reference(name: str, registry: Registry, where: str) -> dict:
    """`{"$ref": ...}` to a definition that a payload type plugin provides."""
    if name not in registry.definitions():
        known = ", ".join(sorted(registry.definitions()))
        raise ProjectError(
            f"{where} uses definition '{name}', which no installed plugin provides "
            f"(known: {known}); install the plugin or use user_definition(...)"
        )
    return {"$ref": f"#/definitions/{name}"}


def _type_name(annotation: Any) -> str:
    """How an error names a type: `Foo` for a class, the full form for `Optional[int]` and co."""
    if typing.get_origin(annotation) is None and hasattr(annotation, "__qualname__"):
        return annotation.__qualname__
    return repr(annotation)


def _user_definition(name: str, user_definitions: dict | None, where: str) -> dict:
    """A copy of the named user definition, so each field gets its own description.

    The original put the same dict under every field using a definition and set the
    description on it, so all those fields ended up with the last field's description.
    """
    if user_definitions is None:
        raise ProjectError(
            f"{where} uses user definition '{name}', but the project has no {USER_DEFINITIONS}"
        )
    if name not in user_definitions:
        known = ", ".join(user_definitions) or "none"
        raise ProjectError(
            f"{where} uses user definition '{name}', which {USER_DEFINITIONS} does not define "
            f"(it defines: {known})"
        )
    return copy.deepcopy(user_definitions[name])
