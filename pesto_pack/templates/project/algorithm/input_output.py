"""What the service takes and answers. After changing these classes, run

    pesto-pack schemagen . --force

to rewrite pesto/api/input_schema.json and output_schema.json from them."""

from dataclasses import dataclass

import numpy as np

from pesto_pack.fields import Definition, definition, field


@dataclass
class Input:
    image: np.ndarray = definition(
        Definition.Image, required=True, description="An image to mirror (PNG, JPEG or TIFF)"
    )
    label: str = field("A name for the image, repeated in the summary", default="image")
    gain: float = field("A factor applied to every pixel value, clipped to the image's range", default=1.0)


@dataclass
class Output:
    image: np.ndarray = definition(
        Definition.Image, description="The image mirrored left to right, times the gain"
    )
    summary: str = field("One line about the image")
    mean: float = field("The mean pixel value of the answered image")
    stats: dict = definition(Definition.Metadata, description="The image's bands, height and width")
