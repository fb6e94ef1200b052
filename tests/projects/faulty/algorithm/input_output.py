from dataclasses import dataclass

from pesto_pack.fields import field


@dataclass
class Input:
    mode: str = field("ok, raise, bad_output, undeclared_output, not_an_output or sleep", required=True)
    seconds: float = field("How long `sleep` sleeps", default=0.0)


@dataclass
class Output:
    result: str = field("What happened")
    active: int = field("process() calls running when this one started, itself included")
