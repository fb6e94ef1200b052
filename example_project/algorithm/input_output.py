from dataclasses import dataclass

import numpy as np

from pesto_pack.fields import Definition, definition, field


@dataclass
class Input:
    image: np.array = definition(
        Definition.Image, required=True, description="Image related to any ImageNet class"
    )


@dataclass
class Output:
    category: str = field("Predicted class")
