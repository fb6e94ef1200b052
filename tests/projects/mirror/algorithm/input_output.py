from dataclasses import dataclass

import numpy as np

from pesto_pack.fields import Definition, definition, field


@dataclass
class Input:
    text: str = field("A string", default=None)
    count: int = field("An integer", default=None)
    ratio: float = field("A number", default=None)
    flag: bool = field("A boolean", default=None)
    meta: dict = definition(Definition.Metadata, description="A JSON object", default=None)
    metas: list = definition(Definition.Metadatas, description="JSON objects", default=None)
    shape: dict = definition(Definition.Polygon, description="A GeoJSON polygon", default=None)
    shapes: list = definition(Definition.Polygons, description="GeoJSON polygons", default=None)
    image: np.ndarray = definition(Definition.Image, description="An image", default=None)
    images: list = definition(Definition.Images, description="Images", default=None)


@dataclass
class Output:
    text: str = field("The text, unchanged")
    count: int = field("The integer, unchanged")
    ratio: float = field("The number, unchanged")
    flag: bool = field("The boolean, unchanged")
    meta: dict = definition(Definition.Metadata, description="The object, unchanged")
    metas: list = definition(Definition.Metadatas, description="The objects, unchanged")
    shape: dict = definition(Definition.Polygon, description="The polygon, unchanged")
    shapes: list = definition(Definition.Polygons, description="The polygons, unchanged")
    image: np.ndarray = definition(Definition.Image, description="The image's pixels, unchanged")
    images: list = definition(Definition.Images, description="The images' pixels, unchanged")
