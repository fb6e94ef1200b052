"""pesto_pack: PESTO projects as a model, payload types and profiles as plugins, build and test.

A plugin marks its hook functions with `@pesto_pack.hookimpl` (see `pesto_pack.hookspecs`).
"""

from pesto_pack.hookspecs import hookimpl

__all__ = ["hookimpl"]
