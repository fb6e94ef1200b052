from dataclasses import dataclass

from pesto_pack.fields import field


@dataclass
class Input:
    text: str = field("A text to shout", required=True)
    count: int = field("A number to write with thousands separators", default=0)


@dataclass
class Output:
    text: str = field("The text in capitals, with the configured punctuation and the resources' suffixes")
    count: str = field("The number as humanize writes it")
    style: str = field("The GREETING_STYLE environment variable of the image")
