"""A second plugin that registers a type named `Table` too: installing both is an error."""

from collections.abc import Callable

from pesto_pack import hookimpl
from pesto_pack.types.base import PayloadType


@hookimpl
def register_payload_types(register: Callable[[PayloadType], None]) -> None:
    register(PayloadType("Table", definition={"type": "array"}, extensions=(".tsv",)))
