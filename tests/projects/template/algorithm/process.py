"""Shaped like the original PESTO template: instance methods, a model made in on_start()."""

import json
import os
from pathlib import Path

import numpy as np

from algorithm.input_output import Input, Output


def box(x: int, y: int, width: int, height: int) -> dict:
    corners = [[x, y], [x, y + height], [x + width, y + height], [x + width, y], [x, y]]
    return {"type": "Polygon", "coordinates": [corners]}


class Process:
    def on_start(self) -> None:
        """Read the service config (/etc/pesto in an image, PESTO_CONFIG_DIR on the host)."""
        config_dir = Path(os.environ.get("PESTO_CONFIG_DIR", "/etc/pesto"))
        self.category = json.loads((config_dir / "config.json").read_text())["category"]
        self.model = lambda image: (np.iinfo(image.dtype).max - image).astype(image.dtype)

    def process(self, input: Input) -> Output:
        image = input.image  # (C, H, W)
        height, width = image.shape[1], image.shape[2]
        areas = [box(0, 0, width, height), box(width // 4, height // 4, width // 2, height // 2)]
        features = [
            {"type": "Feature", "geometry": area, "properties": {"category": self.category, "rank": rank}}
            for rank, area in enumerate(areas)
        ]
        return Output(
            image=self.model(image),
            areas=areas,
            number_output=input.number_parameter * 2,
            integer_output=input.integer_parameter + 1,
            dict_output={**input.dict_parameter, "object": input.object_parameter or {}},
            string_output=input.string_parameter.upper(),
            image_list=[image, image[:, ::-1, :]],
            geojson={"type": "FeatureCollection", "features": features},
        )
