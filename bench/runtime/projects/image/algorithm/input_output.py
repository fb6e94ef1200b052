"""Plain dataclasses, so that both the new runtime and the original PESTO can load them."""

from dataclasses import dataclass

import numpy as np


@dataclass
class Input:
    image: np.ndarray


@dataclass
class Output:
    image: np.ndarray
