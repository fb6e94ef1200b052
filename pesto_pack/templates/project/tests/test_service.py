"""Your own checks of the service, beside the test folders of pesto/tests/resources.

`pytest --pesto-image=NAME:VERSION` in this folder runs both against the image (build it
first with `pesto-pack build .`); `pytest --pesto-url=http://127.0.0.1:8080` runs them
against `pesto-serve .` instead, with no image at all. The `pesto_client` fixture talks to
the service under test.
"""

import base64
import io

import numpy as np
from PIL import Image


def png_base64(pixels: np.ndarray) -> str:
    """An image as a request carries it: a base64 string of an encoded file."""
    encoded = io.BytesIO()
    Image.fromarray(pixels).save(encoded, format="PNG")
    return base64.b64encode(encoded.getvalue()).decode()


def test_the_image_is_the_only_required_input(pesto_client):
    assert pesto_client.describe()["input"]["required"] == ["image"]


def test_summary_and_stats_describe_the_image(pesto_client):
    black = np.zeros((4, 6, 3), dtype=np.uint8)  # height 4, width 6, 3 bands
    answer = pesto_client.process({"image": png_base64(black), "label": "black"})
    assert answer["summary"] == "black: 6x4, 3 band(s), gain 1"
    assert answer["stats"] == {"bands": 3, "height": 4, "width": 6}
    assert answer["mean"] == 0
