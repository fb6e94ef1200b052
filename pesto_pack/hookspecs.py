"""Every way to extend pesto, one hook each.

A plugin is a module or object with functions marked `@pesto_pack.hookimpl`, registered through
the `pesto` entry-point group of its package:

    [project.entry-points.pesto]
    mask = "pesto_mask.plugin"

The built-in payload types and profiles are registered through these same hooks
(see `pesto_pack.plugins.BUILTIN_PLUGINS`).
"""

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("pesto")
hookimpl = pluggy.HookimplMarker("pesto")


@hookspec
def register_payload_types(register: Callable) -> None:
    """Call `register(payload_type)` for each `PayloadType` this plugin provides."""


@hookspec
def register_profiles(register: Callable) -> None:
    """Call `register(profile)` for each build `Profile` this plugin provides."""
