"""Test folders to JSON values and back: the functions live in `pesto_pack.folders`, which
`pesto-pack run` shares; the plugin keeps importing them from here."""

from pesto_pack.folders import (
    CHECK_SETTINGS,
    find_key,
    read_folder,
    read_path,
    remove,
    write_key,
)

__all__ = ["CHECK_SETTINGS", "find_key", "read_folder", "read_path", "remove", "write_key"]
