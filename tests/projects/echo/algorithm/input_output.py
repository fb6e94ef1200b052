from dataclasses import dataclass

from pesto_pack.fields import field


@dataclass
class Input:
    text: str = field("Any text", required=True)
    number: float = field("Any number", default=0.0)


@dataclass
class Output:
    text: str = field("The text, unchanged")
    number: float = field("The number, unchanged")
