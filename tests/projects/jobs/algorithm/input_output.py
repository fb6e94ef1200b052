from dataclasses import dataclass

from pesto_pack.fields import field


@dataclass
class Input:
    tag: str = field("Returned upper-cased, and appended to $JOBS_CALLS_FILE at each call", required=True)
    seconds: float = field("How long process() takes (without holding the GIL)", default=0.0)
    steps: int = field("Progress reports made while it sleeps (0: none)", default=0)
    size: int = field("Bytes of `result` (0: the tag upper-cased)", default=0)
    fail: bool = field("Raise instead of answering", default=False)


@dataclass
class Output:
    result: str = field("The tag upper-cased, or `size` bytes")
