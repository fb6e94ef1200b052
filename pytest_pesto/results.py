"""The original `pesto test` summary, `results.json`, written at the end of the session.

Its shape is the original's, so that scripts reading it keep working:
`{"describe": {"NoDifference": true}, "test_1": {"KeysMissing": [...], "KeysNotExpected":
[...], "KeysNotEqual": {key: {"expected": ..., "actual": ...}}}}`; this one adds the type's
`differences` lines to each unequal key, `{"Error": message}` for a test that got no answer,
and `Updated` (the keys `--pesto-update` rewrote). Values that are not JSON or text (images)
appear as the path of their file: the expected one in `output/`, the actual one saved in
`actual/`, instead of megabytes of base64.

Entries travel on the test reports (`report.pesto_result`), so that under pytest-xdist the
controller, which sees every worker's reports, writes the one file.
"""

import json
from pathlib import Path

from pesto_pack.types.base import JSON, PayloadType
from pytest_pesto.compare import Comparison

NO_DIFFERENCE = {"NoDifference": True}


def comparison_entry(
    comparison: Comparison,
    expected: dict[str, JSON],
    actual: dict[str, JSON],
    types: dict[str, PayloadType],
    files: dict[str, tuple[Path | None, Path | None]],
) -> dict:
    """The entry of one comparison; `files` gives each key's expected and actual file."""
    if comparison.matches:
        return dict(NO_DIFFERENCE)
    entry: dict = {}
    if comparison.unexpected:
        entry["KeysNotExpected"] = comparison.unexpected
    if comparison.missing:
        entry["KeysMissing"] = comparison.missing
    if comparison.differing:
        entry["KeysNotEqual"] = {
            key: {
                "expected": _shown(expected[key], types[key], files.get(key, (None, None))[0]),
                "actual": _shown(actual[key], types[key], files.get(key, (None, None))[1]),
                "differences": lines,
            }
            for key, lines in comparison.differing.items()
        }
    return entry


def error_entry(message: str) -> dict:
    return {"Error": message}


def write(path: Path, entries: list[tuple[str, str, dict]]) -> None:
    """Write `{name: entry}`; a name seen twice (two projects) is keyed by its node id."""
    summary: dict[str, dict] = {}
    for name, nodeid, entry in entries:
        summary[nodeid if name in summary else name] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")


def _shown(value: JSON, payload_type: PayloadType, file: Path | None) -> JSON:
    return value if _textual(payload_type) or file is None else str(file)


def _textual(payload_type: PayloadType) -> bool:
    """Whether values of this type read well inline (JSON, text), items included."""
    own = payload_type.media_type.startswith(("application/json", "text/"))
    return own and (payload_type.items is None or _textual(payload_type.items))
