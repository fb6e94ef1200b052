"""The plugin manager, and the registry of payload types and profiles it collects.

Built-in types and profiles are plugin modules registered exactly like a third-party package's
entry point (group `pesto`), the way pytest and datasette register their own features.
"""

import functools
import importlib
from dataclasses import dataclass

import pluggy

from pesto_pack import hookspecs
from pesto_pack.errors import PestoError
from pesto_pack.profiles import Profile
from pesto_pack.types.base import PayloadType

BUILTIN_PLUGINS = (
    "pesto_pack.types.primitives",
    "pesto_pack.types.images",
    "pesto_pack.types.geometry",
    "pesto_pack.types.metadata",
    "pesto_pack.profiles",
)
ENTRY_POINT_GROUP = "pesto"


def make_plugin_manager(load_entry_points: bool = True) -> pluggy.PluginManager:
    """A manager holding the built-ins and, unless told not to, every installed plugin."""
    manager = pluggy.PluginManager("pesto")
    manager.add_hookspecs(hookspecs)
    for module_name in BUILTIN_PLUGINS:
        manager.register(importlib.import_module(module_name), name=module_name)
    if load_entry_points:
        manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    return manager


@dataclass(frozen=True)
class Registry:
    """The payload types and profiles that the registered plugins provide, by name."""

    types: dict[str, PayloadType]
    profiles: dict[str, Profile]

    @classmethod
    def from_plugin_manager(cls, manager: pluggy.PluginManager) -> "Registry":
        return cls(
            types=_collect(manager.hook.register_payload_types, "payload type"),
            profiles=_collect(manager.hook.register_profiles, "profile"),
        )

    def definitions(self) -> dict[str, dict]:
        """The JSON-schema definitions of every definition type (`Image`, `Polygon`, ...)."""
        return {name: t.definition for name, t in self.types.items() if t.definition is not None}

    def type_for_property(self, schema_property: dict) -> PayloadType:
        """The type of one property of an input or output schema.

        `{"$ref": "#/definitions/Image"}` is the `Image` type; `{"type": "integer"}` the
        `integer` type; anything else (a user definition inlined by schemagen, a schema with no
        type) is plain JSON, handled by the `object` type.
        """
        reference = schema_property.get("$ref", "")
        if reference.startswith("#/definitions/"):
            name = reference.removeprefix("#/definitions/")
            if name in self.types:
                return self.types[name]
        json_type = schema_property.get("type")
        if isinstance(json_type, str) and json_type in self.types:
            return self.types[json_type]
        return self.types["object"]

    def type_for_file_suffix(self, suffix: str) -> PayloadType | None:
        """The type that reads test files with this suffix (`.png`, `.string`), if any."""
        suffix = suffix.lower()
        for payload_type in self.types.values():
            if suffix in payload_type.extensions:
                return payload_type
        return None

    def known_suffixes(self) -> list[str]:
        return sorted({s for t in self.types.values() for s in t.extensions})


def _collect(hook: pluggy.HookCaller, kind: str) -> dict:
    """What every plugin registers, in registration order: the built-ins first.

    Each plugin is called on its own, so that a name registered twice is reported with both
    plugins named.
    """
    found: dict = {}
    owners: dict[str, str] = {}
    for impl in hook.get_hookimpls():

        def register(item, plugin: str = impl.plugin_name) -> None:
            if item.name in found:
                raise PestoError(
                    f"the {kind} {item.name!r} is registered by two plugins, "
                    f"{owners[item.name]!r} and {plugin!r}; uninstall one of them"
                )
            found[item.name], owners[item.name] = item, plugin

        impl.function(register=register)
    return found


@functools.cache
def default_registry() -> Registry:
    """The registry of the built-ins and every installed plugin, collected once per process."""
    return Registry.from_plugin_manager(make_plugin_manager())
