"""Expected against actual: answers key by key through their types, describe as JSON.

Each output key is compared by the type the service's own output schema gives it (an Image
by pixels, a number with the tolerance, JSON structurally), so the harness and the runtime
agree on what a value is.
"""

import json
import urllib.parse
from dataclasses import dataclass, field

from pesto_pack.plugins import Registry
from pesto_pack.types.base import JSON, PayloadType, Tolerance


@dataclass
class Comparison:
    """What differs between an expected and an actual answer (empty when they match)."""

    missing: list[str] = field(default_factory=list)
    """Keys the expected answer has and the actual one lacks."""
    unexpected: list[str] = field(default_factory=list)
    """Keys the actual answer has and the expected one lacks."""
    differing: dict[str, list[str]] = field(default_factory=dict)
    """Key to the type's lines saying how its values differ."""

    @property
    def matches(self) -> bool:
        return not (self.missing or self.unexpected or self.differing)


def compare_answers(
    expected: dict[str, JSON],
    actual: dict[str, JSON],
    types: dict[str, PayloadType],
    tolerance: Tolerance,
) -> Comparison:
    """Key by key, each by its type in `types` (which holds every key of both answers)."""
    comparison = Comparison(
        missing=sorted(expected.keys() - actual.keys()),
        unexpected=sorted(actual.keys() - expected.keys()),
    )
    for key in sorted(expected.keys() & actual.keys()):
        if _identical(expected[key], actual[key]):
            continue
        lines = types[key].compare(expected[key], actual[key], tolerance)
        if lines:
            comparison.differing[key] = [_named(line, key) for line in lines]
    return comparison


def _identical(expected: JSON, actual: JSON) -> bool:
    """Same JSON text: no type can find a difference, so its (slower) compare is skipped.

    Text, not `==`, which holds `1 == 1.0 == True` that a type's compare may tell apart.
    """
    return json.dumps(expected, sort_keys=True) == json.dumps(actual, sort_keys=True)


def types_of(keys, properties: dict[str, dict], registry: Registry) -> dict[str, PayloadType]:
    """The type of each key by its property in an output schema (plain JSON when absent)."""
    return {key: registry.type_for_property(properties.get(key, {})) for key in keys}


def _named(line: str, key: str) -> str:
    """A type's line about one key, starting with the key (`dict['a']: expected 1, got 2`)."""
    return key + line.removeprefix("answer") if line.startswith("answer") else f"{key}: {line}"


def compare_describe(expected: dict, actual: dict, registry: Registry, tolerance: Tolerance) -> Comparison:
    """Two describe documents key by key as JSON, the hosts and ports of `_links` aside."""
    types = types_of(expected.keys() | actual.keys(), {}, registry)
    return compare_answers(without_link_hosts(expected), without_link_hosts(actual), types, tolerance)


def without_link_hosts(describe: JSON) -> JSON:
    """`describe` with the host and port of every `_links` href replaced by `{host}`.

    The service builds those hrefs from the request's host and port, which change with every
    container; nothing else is normalised.
    """
    if not isinstance(describe, dict) or "_links" not in describe:
        return describe
    return {**describe, "_links": _strip_hosts(describe["_links"])}


def _strip_hosts(value: JSON) -> JSON:
    if isinstance(value, dict):
        return {
            key: _without_host(item) if key == "href" and isinstance(item, str) else _strip_hosts(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_strip_hosts(item) for item in value]
    return value


def _without_host(href: str) -> str:
    parts = urllib.parse.urlsplit(href)
    return parts._replace(netloc="{host}").geturl() if parts.netloc else href
