"""Test folders to JSON values and back, through the payload types.

The pytest plugin reads test folders and writes `--pesto-update`'s answers with these;
`pesto-pack run` and `pesto-serve run` read `-i image=@cat.png` and `input/` folders and write
answers (`-o`, `--output-dir`) with the same functions, so a written answer is a test folder.

Reading follows the original's rules, so existing test folders keep their meaning: a file is
read by the type that owns its extension (`.png` an Image, `.int` an integer, ...) and keyed by
its name without the extension; a folder whose entries are all named by digits (`0.png`,
`1.png`) is a list in numeric order, any other folder a dict. Names starting with a dot are
ignored (editors' and file managers' files). Writing (`--pesto-update`, saved actual answers)
is the inverse: each key is written by the type the service's output schema gives it.
"""

import shutil
from pathlib import Path

from pesto_pack.errors import PayloadError
from pesto_pack.plugins import Registry
from pesto_pack.types.base import JSON, DecodeSettings, PayloadType

_JSON_FILE = PayloadType("json", extensions=(".json",))
"""How a value is written whose type has no file of its own."""

CHECK_SETTINGS = DecodeSettings(max_image_pixels=2**40)
"""Test files are the project's own: checked for being decodable, not for their size."""


def read_folder(folder: Path, registry: Registry, check: bool = False) -> dict[str, JSON]:
    """An `input/` or `output/` folder as the dict of its keys (the request or the answer)."""
    return {_key_of(path): read_path(path, registry, check) for path in _entries(folder)}


def read_path(path: Path, registry: Registry, check: bool = False) -> JSON:
    """One file or folder of a test folder as the JSON value a client sends.

    With `check`, each file's value is also decoded by its type, as the service would decode
    it, so that a file that reads but cannot be used (a truncated image) is found now.
    """
    if path.is_dir():
        entries = _entries(path)
        if all(_key_of(entry).isdigit() for entry in entries):
            return [read_path(entry, registry, check) for entry in sorted(entries, key=_index_of)]
        return {_key_of(entry): read_path(entry, registry, check) for entry in entries}
    payload_type = registry.type_for_file_suffix(path.suffix)
    if payload_type is None:
        raise PayloadError(
            f"{path}: no payload type reads '{path.suffix or 'extension-less'}' files; "
            f"rename it with one of {', '.join(registry.known_suffixes())}"
        )
    try:
        value = payload_type.read_file(path)
        if check:
            payload_type.decode(value, CHECK_SETTINGS)
        return value
    except PayloadError as error:
        raise error if str(path) in str(error) else PayloadError(f"{path}: {error}") from None
    except OSError as error:
        raise PayloadError(f"{path}: cannot be read ({error.strerror or error})") from None


def find_key(folder: Path, key: str) -> Path | None:
    """The file or folder that holds `key` in an `input/` or `output/` folder, if any."""
    return next((path for path in _entries(folder) if _key_of(path) == key), None)


def write_key(folder: Path, key: str, value: JSON, payload_type: PayloadType) -> Path:
    """Write one answer value as `folder/key.<ext>` (a folder for a list type), replacing
    whatever held `key` before."""
    folder.mkdir(parents=True, exist_ok=True)
    previous = find_key(folder, key)
    if previous is not None:
        remove(previous)
    if not payload_type.extensions and payload_type.items is None:
        raise PayloadError(
            f"{folder / key}: the {payload_type.name} type cannot write test files (it has no "
            "file extension); write this expected value by hand"
        )
    return payload_type.write_file(value, folder / key)


def write_answer(
    folder: Path, answer: dict[str, JSON], types: dict[str, PayloadType], fresh: bool = False
) -> list[Path]:
    """Write a whole answer as an `output/` folder, each key through its type (`image.png`,
    `mean.float`); a key whose type has no file extension is written as `.json`. With `fresh`
    the folder exists and is empty: nothing to replace, nothing to look up (a batch's answers)."""
    if not fresh:
        folder.mkdir(parents=True, exist_ok=True)
    written = []
    for key, value in answer.items():
        payload_type = types.get(key)
        if payload_type is None or (not payload_type.extensions and payload_type.items is None):
            payload_type = _JSON_FILE
        if fresh:
            written.append(payload_type.write_file(value, folder / key))
        else:
            written.append(write_key(folder, key, value, payload_type))
    return written


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def _entries(folder: Path) -> list[Path]:
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    seen: dict[str, Path] = {}
    for path in entries:
        key = _key_of(path)
        if key in seen:
            raise PayloadError(
                f"{folder}: both {seen[key].name} and {path.name} hold the key '{key}'; keep one"
            )
        seen[key] = path
    return entries


def _key_of(path: Path) -> str:
    return path.name if path.is_dir() else path.stem


def _index_of(path: Path) -> int:
    return int(_key_of(path))
