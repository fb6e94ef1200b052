from dataclasses import dataclass

import numpy as np

from pesto_pack.fields import Definition, definition, field, user_definition


@dataclass
class Input:
    image: np.ndarray = definition(Definition.Image, required=True, description="Input image")
    dict_parameter: dict = definition(
        Definition.Metadata, description="Any JSON object", default_factory=dict
    )
    object_parameter: object = definition(
        Definition.Metadata, description="An object such as {'key': 'value'}", default=None
    )
    integer_parameter: int = field("An integer", default=0)
    number_parameter: float = field("A number", default=1.0)
    string_parameter: str = field("A string", default="none")


@dataclass
class Output:
    image: np.ndarray = definition(Definition.Image, description="The input image, inverted")
    areas: list = definition(Definition.Polygons, description="The whole image and its centre")
    number_output: float = field("number_parameter doubled")
    integer_output: int = field("integer_parameter plus one")
    dict_output: dict = definition(
        Definition.Metadata, description="dict_parameter with object_parameter under 'object'"
    )
    string_output: str = field("string_parameter in capitals")
    image_list: list = definition(Definition.Images, description="The input image, then flipped upside down")
    geojson: dict = user_definition("geojson", description="The areas as a feature collection")
