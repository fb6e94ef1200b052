"""Plain dataclasses, so that both the new runtime and the original PESTO can load them."""

from dataclasses import dataclass


@dataclass
class Input:
    text: str


@dataclass
class Output:
    text: str
