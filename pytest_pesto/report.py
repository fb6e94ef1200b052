"""Failure reports written for a person: what differs, where to look, what to do next.

A test item raises `Mismatch` or `ServiceProblem` with the finished text; the item's
`repr_failure` shows that text alone, never the plugin's traceback.
"""

from collections.abc import Sequence
from pathlib import Path

from pytest_pesto.compare import Comparison

INDENT = "  "


class Mismatch(Exception):
    """The service answered, and the answer differs from what the test folder expects."""


class ServiceProblem(Exception):
    """The service could not answer (not started, crashed, an error status)."""


def answer_mismatch(
    what: str,
    comparison: Comparison,
    expected_name: str,
    saved: str | None,
    update_hint: str,
    pictures: Sequence[str] = (),
) -> str:
    """`what` differs from `expected_name`: one block per key, then where the answer and the
    pictures of its differences are."""
    lines = [f"{what} differs from {expected_name}:"]
    for differences in comparison.differing.values():
        lines += [f"{INDENT}{line}" for line in differences]
    if comparison.missing:
        lines.append(f"{INDENT}missing from the answer: {', '.join(comparison.missing)}")
    if comparison.unexpected:
        lines.append(f"{INDENT}in the answer but not in {expected_name}: {', '.join(comparison.unexpected)}")
    if saved is not None:
        lines.append(f"the whole actual answer is saved in {saved}")
    if pictures:
        lines.append("pictures of the differences:")
        lines += [f"{INDENT}{line}" for line in pictures]
    lines.append(update_hint)
    return "\n".join(lines)


def no_expected_output(output: Path) -> str:
    return (
        f"{output} is missing: the test folder says what to send but not what to expect. "
        "Run `pytest --pesto-update` to record the service's answer there, then review it."
    )


def display(path: Path, root: Path) -> Path:
    """`path` relative to the rootdir when it is under it, as pytest shows node ids."""
    try:
        return path.relative_to(root)
    except ValueError:
        return path
