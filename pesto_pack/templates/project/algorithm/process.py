"""The service's algorithm: replace this example with your model.

The service creates one `Process`, calls `on_start()` once before it answers any request
(load models and other heavy resources there), then `process()` for each request.
Images arrive as numpy arrays in channel-first order: (bands, height, width).
"""

import json
import os
from pathlib import Path

import numpy as np

from algorithm.input_output import Input, Output


def config_path() -> Path:
    """pesto/api/config.json: in /etc/pesto in an image, `PESTO_CONFIG_DIR` on your machine."""
    return Path(os.environ.get("PESTO_CONFIG_DIR", "/etc/pesto")) / "config.json"


class Process:
    def on_start(self) -> None:
        self.config = json.loads(config_path().read_text())

    def process(self, input: Input) -> Output:
        image = np.asarray(input.image)
        answered = apply_gain(image[:, :, ::-1], input.gain)
        bands, height, width = image.shape
        return Output(
            image=answered,
            summary=f"{input.label}: {width}x{height}, {bands} band(s), gain {input.gain:g}",
            mean=round(float(answered.mean()), self.config["decimals"]),
            stats={"bands": bands, "height": height, "width": width},
        )


def apply_gain(image: np.ndarray, gain: float) -> np.ndarray:
    """`image * gain` in the image's own type: integers are clipped to their range."""
    scaled = image.astype(np.float64) * gain
    if np.issubdtype(image.dtype, np.integer):
        limits = np.iinfo(image.dtype)
        scaled = np.clip(np.rint(scaled), limits.min, limits.max)
    return scaled.astype(image.dtype)
