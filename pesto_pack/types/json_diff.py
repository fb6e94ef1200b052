"""Structural comparison of JSON values, with a tolerance for numbers (deepdiff).

Imported only by the test harness's side of a payload type: the runtime never compares.
"""

from deepdiff import DeepDiff

from pesto_pack.types.base import JSON, Tolerance


def compare_json(expected: JSON, actual: JSON, tolerance: Tolerance) -> list[str]:
    """One line per difference, with deepdiff's path, the expected and the actual value."""
    diff = DeepDiff(
        expected,
        actual,
        math_epsilon=tolerance.number,
        ignore_numeric_type_changes=True,
        verbose_level=2,
    )
    lines = []
    for kind, changes in diff.to_dict().items():
        items = changes.items() if isinstance(changes, dict) else ((c, None) for c in changes)
        for path, change in items:
            lines.append(_describe(kind, path, change))
    return sorted(lines)


def _describe(kind: str, path: str, change) -> str:
    path = path.replace("root", "answer", 1)
    if kind in ("values_changed", "type_changes"):
        return f"{path}: expected {change['old_value']!r}, got {change['new_value']!r}"
    if kind.endswith("_added"):
        return f"{path}: unexpected (not in the expected output): {change!r}"
    if kind.endswith("_removed"):
        return f"{path}: missing (expected {change!r})"
    return f"{path}: {kind.replace('_', ' ')} {change!r}"
