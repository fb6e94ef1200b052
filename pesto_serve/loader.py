"""Import a project's `algorithm.process.Process` and call it the way its author wrote it.

Users write `Process` two ways: static methods (the tutorial) or instance methods (the
original's template). One instance serves both: calling a static method through an instance
works. `process()` takes either the project's `Input` dataclass (from
`algorithm/input_output.py`) or one keyword argument per input property, as in the original.
A `process()` with a parameter named `progress` (not an input property) is also handed a
callable, `progress(percent)`, that reports how far it is (see docs/jobs.md).
"""

import dataclasses
import importlib
import inspect
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pesto_pack.errors import ProjectError
from pesto_pack.project import PACKAGE

PROGRESS = "progress"


@dataclass(frozen=True)
class LoadedProcess:
    """The project's one `Process` instance and how to hand it a request's inputs."""

    instance: Any
    input_class: type | None
    """The `Input` dataclass `process()` takes, or None when it takes keyword arguments."""
    missing_as_none: tuple[str, ...]
    """Input properties that `process()` or `Input` has no default for: None when not sent."""
    thread_safe: bool
    takes_progress: bool = False
    """`process()` has a `progress` parameter: it is handed a progress callback."""

    @property
    def has_on_start(self) -> bool:
        return callable(getattr(self.instance, "on_start", None))

    def on_start(self) -> None:
        if self.has_on_start:
            self.instance.on_start()

    def process(self, values: dict[str, Any], progress: Callable[[float], None] | None = None) -> Any:
        """Call `process()` with the decoded inputs; what it returns, unchanged."""
        if self.missing_as_none:
            values = {**dict.fromkeys(self.missing_as_none), **values}
        extra = {PROGRESS: progress or _no_progress} if self.takes_progress else {}
        if self.input_class is not None:
            return self.instance.process(self.input_class(**values), **extra)
        return self.instance.process(**values, **extra)


def load_process(project_dir: Path, input_properties: Iterable[str]) -> LoadedProcess:
    """Import `algorithm.process.Process` from `project_dir` and check it takes the inputs."""
    project_dir = Path(project_dir).resolve()
    _import_path_first(project_dir)
    module = _import(f"{PACKAGE}.process", project_dir, required=True)
    process_class = getattr(module, "Process", None)
    if not inspect.isclass(process_class) or not callable(getattr(process_class, "process", None)):
        raise ProjectError(
            f"{project_dir}/algorithm/process.py has no class `Process` with a `process` method; "
            "add one (see the tutorial)"
        )
    try:
        instance = process_class()
    except Exception as error:
        raise ProjectError(
            f"`Process()` failed: {type(error).__name__}: {error}; Process must be creatable "
            "without arguments (load heavy resources in on_start())"
        ) from error
    io_module = _import(f"{PACKAGE}.input_output", project_dir, required=False)
    input_class = getattr(io_module, "Input", None) if io_module else None
    properties = tuple(input_properties)
    takes_progress = PROGRESS not in properties and PROGRESS in inspect.signature(instance.process).parameters
    if input_class is not None and _takes_input_object(instance.process, properties):
        defaults = _dataclass_defaults(input_class, properties, project_dir)
    else:
        input_class = None
        defaults = _keyword_defaults(instance.process, properties, project_dir)
    return LoadedProcess(
        instance=instance,
        input_class=input_class,
        missing_as_none=tuple(name for name in properties if name not in defaults),
        thread_safe=getattr(process_class, "thread_safe", False) is True,
        takes_progress=takes_progress,
    )


def _no_progress(percent: float) -> None:
    """The progress callback where nobody reads progress (a stateless request)."""


def _import_path_first(project_dir: Path) -> None:
    """Make `import algorithm` import this project's package afresh.

    Tests (and a host serving several projects in turn) load projects in one interpreter; an
    `algorithm` left in `sys.modules` would hand back the previous project, or the previous
    load's module state.
    """
    root = str(project_dir)
    if root in sys.path:
        sys.path.remove(root)
    sys.path.insert(0, root)
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
        del sys.modules[name]
    importlib.invalidate_caches()


def _import(name: str, project_dir: Path, required: bool):
    relative = name.replace(".", "/") + ".py"
    if not (project_dir / relative).is_file():
        if required:
            raise ProjectError(f"{project_dir} has no {relative}; it holds the class Process")
        return None
    try:
        return importlib.import_module(name)
    except Exception as error:
        raise ProjectError(
            f"importing {project_dir / relative} failed: {type(error).__name__}: {error}"
        ) from error


def _takes_input_object(method, properties: tuple[str, ...]) -> bool:
    """One parameter that is not an input property: `process(input: Input)`."""
    parameters = [
        p
        for p in inspect.signature(method).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and not (p.name == PROGRESS and PROGRESS not in properties)
    ]
    return len(parameters) == 1 and parameters[0].name not in properties


def _dataclass_defaults(input_class: type, properties: tuple[str, ...], project_dir: Path) -> set[str]:
    if not dataclasses.is_dataclass(input_class):
        raise ProjectError(f"{project_dir}/algorithm/input_output.py: `Input` must be a dataclass")
    fields = {f.name: f for f in dataclasses.fields(input_class) if f.init}
    unknown = [name for name in properties if name not in fields]
    if unknown:
        raise ProjectError(
            f"input_schema.json has {', '.join(map(repr, unknown))} but the Input dataclass of "
            f"{project_dir}/algorithm/input_output.py has no such field; add the field, or "
            "regenerate the schemas with `pesto-pack schemagen`"
        )
    missing = dataclasses.MISSING
    return {
        name for name, f in fields.items() if f.default is not missing or f.default_factory is not missing
    }


def _keyword_defaults(method, properties: tuple[str, ...], project_dir: Path) -> set[str]:
    parameters = inspect.signature(method).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    unknown = [name for name in properties if name not in parameters and not takes_any]
    if unknown:
        raise ProjectError(
            f"Process.process() in {project_dir}/algorithm/process.py takes no argument "
            f"{', '.join(map(repr, unknown))} of input_schema.json; take `input: Input` "
            "(algorithm/input_output.py) or one argument per input property"
        )
    return {name for name, p in parameters.items() if p.default is not p.empty} | (
        set(properties) - set(parameters) if takes_any else set()
    )
