"""The one model of a PESTO project: read once, validated, used by every tool.

Nothing else in the toolkit opens `pesto/api/*.json` or `pesto/build/*.json` by hand: the
packer, the runtime and the test harness all go through `load()` (a project folder) or
`load_api()` (the merged files a built image carries in /etc/pesto).
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import reduce
from pathlib import Path

from pesto_pack.errors import ProjectError
from pesto_pack.plugins import Registry, default_registry
from pesto_pack.profiles import BuildSettings, Resource

API_FILES = (
    "config",
    "config_schema",
    "description",
    "input_schema",
    "output_schema",
    "user_definitions",
    "version",
)
OPTIONAL_API_FILES = {"user_definitions": {}, "version": {}, "config": {}, "config_schema": {}}
PACKAGE = "algorithm"
"""The Python package of a project's code: `algorithm/process.py` defines `Process`."""
INPUT_OUTPUT = f"{PACKAGE}/input_output.py"
USER_DEFINITIONS = "pesto/api/user_definitions.json"
BUILD_KEYS = ("name", "version")
REQUIREMENTS_KEYS = ("dockerBaseImage",)


@dataclass(frozen=True)
class ServiceApi:
    """The `pesto/api` files after profiles: what the service answers and how it validates."""

    config: dict
    config_schema: dict
    description: dict
    input_schema: dict
    output_schema: dict
    user_definitions: dict
    version: dict

    @property
    def asynchronous(self) -> bool:
        return bool(self.description.get("asynchronous", False))

    def definitions(self, registry: Registry | None = None) -> dict[str, dict]:
        """Built-in and plugin definitions, then the project's user definitions.

        A user definition named like a built-in one is ignored, as the original PESTO does:
        the built-in type decodes the values, so its definition must be the one described.
        """
        registry = registry or default_registry()
        builtin = registry.definitions()
        return builtin | {n: s for n, s in self.user_definitions.items() if n not in builtin}

    def write(self, folder: Path) -> None:
        """Write the merged files flat into `folder` (what an image carries as /etc/pesto)."""
        folder.mkdir(parents=True, exist_ok=True)
        for name in API_FILES:
            (folder / f"{name}.json").write_text(json.dumps(getattr(self, name), indent=2) + "\n")


@dataclass(frozen=True)
class Project:
    """A PESTO project folder with its profiles applied."""

    root: Path
    profiles: tuple[str, ...]
    name: str
    version: str
    build_file: dict
    """`pesto/build/build.json` after profiles (name, version, algorithm_path, workspace)."""
    build: BuildSettings
    api: ServiceApi

    @property
    def tag(self) -> str:
        """`name:version` plus `-profile` for each profile, as the original tags images."""
        return f"{self.name}:{self.version}" + "".join(f"-{p}" for p in self.profiles)

    @property
    def tests_dir(self) -> Path:
        return self.root / "pesto" / "tests" / "resources"

    @property
    def workspace(self) -> Path:
        """Where builds keep their Dockerfile and context (`~/.pesto/NAME/VERSION` by default)."""
        configured = self.build_file.get("workspace")
        base = Path(configured).expanduser() if configured else Path.home() / ".pesto"
        return base / self.name / self.version


def load(
    root: Path | str,
    profiles: Sequence[str] = (),
    registry: Registry | None = None,
    defer_config_check: bool = False,
) -> Project:
    """Read and validate the project at `root` with `profiles` applied in order.

    `defer_config_check`: config.json is not checked against config_schema.json here; the
    caller runs `check_config(project.api, "pesto/api")` itself (a service does it in its start
    thread, after its port opens: the check imports jsonschema, a third of a start).
    """
    root = Path(root).resolve()
    registry = registry or default_registry()
    api_dir, build_dir = root / "pesto" / "api", root / "pesto" / "build"
    if not api_dir.is_dir() or not build_dir.is_dir():
        raise ProjectError(
            f"{root} is not a PESTO project: it has no pesto/api and pesto/build folders "
            "(create one with `pesto-pack init`)"
        )
    _check_profiles(root, profiles, registry)
    api = _validated(_load_api_files(api_dir, root, profiles), "pesto/api", registry, defer_config_check)
    build_file = _load_with_profiles(build_dir, "build", root, profiles)
    _require_keys(build_file, BUILD_KEYS, build_dir / "build.json", root)
    requirements = _load_with_profiles(build_dir, "requirements", root, profiles)
    _require_keys(requirements, REQUIREMENTS_KEYS, build_dir / "requirements.json", root)
    settings = BuildSettings(
        base_image=requirements["dockerBaseImage"],
        environments={k: str(v) for k, v in (requirements.get("environments") or {}).items()},
        resources=_resources(requirements.get("requirements") or {}, build_dir, root),
    )
    settings = reduce(
        lambda s, p: registry.profiles[p].apply(s) if p in registry.profiles else s,
        profiles,
        settings,
    )
    return Project(
        root=root,
        profiles=tuple(profiles),
        name=str(build_file["name"]),
        version=str(build_file["version"]),
        build_file=build_file,
        build=settings,
        api=api,
    )


def load_api(
    folder: Path | str, registry: Registry | None = None, defer_config_check: bool = False
) -> ServiceApi:
    """Read the merged api files that an image carries (`/etc/pesto`), profiles already applied.

    `defer_config_check`: as for `load()`; the caller runs `check_config(api, str(folder))`.
    """
    folder = Path(folder)
    api = _load_api_files(folder, folder, ())
    return _validated(api, str(folder), registry or default_registry(), defer_config_check)


def available_profiles(root: Path, registry: Registry | None = None) -> list[str]:
    """Profiles this project can be built with: those its files name and the registered ones."""
    registry = registry or default_registry()
    from_files = {
        path.name.split(".")[-2]
        for folder in ("api", "build")
        for path in (root / "pesto" / folder).glob("*.*.json")
    }
    return sorted(from_files | set(registry.profiles))


def read_user_definitions(root: Path) -> dict | None:
    """`pesto/api/user_definitions.json` as it is on disk, or None when the project has none.

    Schemagen reads it before the schemas that `load()` validates exist, so it cannot wait for
    `load()`.
    """
    path = root / USER_DEFINITIONS
    if not path.exists():
        return None
    definitions = read_json(path, root)
    if not isinstance(definitions, dict):
        raise ProjectError(f"{USER_DEFINITIONS} must be a JSON object of schemas by name")
    return definitions


def read_json(path: Path, root: Path | None = None) -> dict | list:
    """Parse a JSON file; a syntax error names the file, line and column."""
    shown = _relative(path, root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectError(f"{shown} is missing") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ProjectError(f"{shown} cannot be read: {error}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ProjectError(f"{shown}: line {error.lineno}, column {error.colno}: {error.msg}") from None


def _load_api_files(api_dir: Path, root: Path, profiles: Sequence[str]) -> ServiceApi:
    values = {}
    for name in API_FILES:
        if name in OPTIONAL_API_FILES and not (api_dir / f"{name}.json").exists():
            values[name] = OPTIONAL_API_FILES[name]
        else:
            values[name] = _load_with_profiles(api_dir, name, root, profiles)
    return ServiceApi(**values)


def _validated(
    api: ServiceApi, api_dir: str, registry: Registry, defer_config_check: bool = False
) -> ServiceApi:
    """`api` once checked: config against its schema (unless deferred), every `$ref` known.
    Errors name `api_dir` as the user knows it (`pesto/api` in a project)."""
    if not defer_config_check:
        check_config(api, api_dir)
    known = set(api.definitions(registry))
    for name in ("input_schema", "output_schema"):
        where = f"{api_dir}/{name}.json"
        for key, prop in getattr(api, name).items():
            if key != "required":
                _check_references(prop, f"{where}: property {key!r}", known)
    return api


def check_config(api: ServiceApi, api_dir: str) -> None:
    """config.json against config_schema.json, when there is a schema; a `ProjectError` naming
    `api_dir` (`pesto/api` in a project, the folder an image reads) if it does not match."""
    if not api.config_schema:
        return
    import jsonschema  # here, not at the top: a service's start imports it after its port opens

    try:
        validator_class = jsonschema.validators.validator_for(api.config_schema)
        validator_class.check_schema(api.config_schema)
    except jsonschema.SchemaError as error:
        raise ProjectError(
            f"{api_dir}/config_schema.json is not a valid JSON schema: {error.message}"
        ) from None
    validator = validator_class(api.config_schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(api.config))
    if error is not None:
        raise ProjectError(
            f"{api_dir}/config.json does not match config_schema.json at "
            f"{json_path(error.absolute_path)}: {error.message}"
        )


def json_path(parts: Iterable[str | int]) -> str:
    """`$.285[1]`: where a value sits in a JSON document, readable (brackets only when needed)."""
    path = "$"
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.isidentifier() or part.isdigit():
            path += f".{part}"
        else:
            path += f"[{part!r}]"
    return path


def _check_references(schema: object, where: str, known: set[str]) -> None:
    """Every `$ref` in a property's schema, however deep, names a known definition."""
    if isinstance(schema, list):
        for item in schema:
            _check_references(item, where, known)
    if not isinstance(schema, dict):
        return
    reference = schema.get("$ref")
    if isinstance(reference, str) and reference.removeprefix("#/definitions/") not in known:
        raise ProjectError(
            f"{where} refers to {reference!r}, which is not a known definition; known: "
            f"{', '.join(sorted(known))} "
            "(add it to user_definitions.json or install the plugin that provides it)"
        )
    for value in schema.values():
        _check_references(value, where, known)


def _load_with_profiles(folder: Path, stem: str, root: Path, profiles: Iterable[str]) -> dict:
    """`stem.json`, then `stem.<profile>.json` of each profile in order, key by key."""
    merged = read_json(folder / f"{stem}.json", root)
    if not isinstance(merged, dict):
        raise ProjectError(f"{_relative(folder / f'{stem}.json', root)} must hold a JSON object")
    for profile in profiles:
        overlay_path = folder / f"{stem}.{profile}.json"
        if overlay_path.exists():
            overlay = read_json(overlay_path, root)
            if not isinstance(overlay, dict):
                raise ProjectError(f"{_relative(overlay_path, root)} must hold a JSON object")
            merged = {**merged, **overlay}
    return merged


def _check_profiles(root: Path, profiles: Sequence[str], registry: Registry) -> None:
    available = available_profiles(root, registry)
    unknown = [p for p in profiles if p not in available]
    if unknown:
        raise ProjectError(
            f"unknown profile {', '.join(map(repr, unknown))}; this project has: "
            f"{', '.join(available) or 'none'}"
        )


def _require_keys(values: dict, keys: Sequence[str], path: Path, root: Path) -> None:
    for key in keys:
        if key not in values:
            raise ProjectError(f"{_relative(path, root)} is missing `{key}`; add it")


def _resources(requirements: dict, build_dir: Path, root: Path) -> tuple[Resource, ...]:
    resources = []
    where = _relative(build_dir / "requirements.json", root)
    for name, spec in requirements.items():
        if not isinstance(spec, dict) or "from" not in spec:
            raise ProjectError(f"{where}: requirement {name!r} needs a `from` (a URI or a path)")
        resources.append(Resource(name, spec["from"], spec.get("to"), spec.get("sha256")))
    return tuple(resources)


def _relative(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return str(path.relative_to(root))
        except ValueError:
            pass
    return str(path)
