"""A probe of what a build puts in the image: a pip requirement (humanize), a resource
unpacked from a .tar.gz, a .whl resource (shout_suffix), an environment variable and the
service's config file."""

import json
import os
from pathlib import Path

import humanize
import shout_suffix

from algorithm.input_output import Input, Output

SUFFIX_FILE = Path(os.environ.get("GREETING_DIR", "/opt/data/greeting")) / "suffix.txt"


class Process:
    punctuation = "!"
    suffix = ""

    def on_start(self) -> None:
        config_dir = Path(os.environ.get("PESTO_CONFIG_DIR", "/etc/pesto"))
        Process.punctuation = json.loads((config_dir / "config.json").read_text())["punctuation"]
        Process.suffix = SUFFIX_FILE.read_text().strip()

    def process(self, input: Input) -> Output:
        return Output(
            text=f"{input.text.upper()}{self.punctuation} {self.suffix} {shout_suffix.SUFFIX}",
            count=humanize.intcomma(input.count),
            style=os.environ.get("GREETING_STYLE", ""),
        )
