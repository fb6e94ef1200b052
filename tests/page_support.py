"""The try-it page in a real browser, used as a person would: the helpers of the page tests
(tests/test_page*.py, tests/test_reload.py). Controls are found through their labels, so a
control without one fails the test that looks for it."""

import base64
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from browser_support import wait_for


def open_page(driver, url: str) -> None:
    driver.get(url + "/")
    wait_for(driver, lambda d: d.find_element("id", "inputs").is_displayed(), message="the form never showed")


def control(driver, name: str):
    """The control of an input, found through its label (so every control must have one)."""
    label = driver.find_element("xpath", f"//label[span[text()='{name}']]")
    return driver.find_element("id", label.get_attribute("for"))


def fill(driver, name: str, text: str) -> None:
    field = control(driver, name)
    field.clear()
    field.send_keys(text)


def run_and_wait(driver, what: str = "outputs") -> None:
    """Press Run and wait for the outputs, or the error message (`what="error"`); the other
    one showing up instead fails the test with what the page shows."""
    driver.find_element("id", "run").click()
    wait_for(
        driver,
        lambda d: (
            d.find_element("id", "outputs").is_displayed() or d.find_element("id", "error").is_displayed()
        ),
        timeout=60,
        message="no outputs and no error after Run",
    )
    if not driver.find_element("id", what).is_displayed():
        pytest.fail(
            f"expected {what}, the page shows: {driver.find_element('tag name', 'main').text[-2000:]}"
        )


def output(driver, name: str):
    return driver.find_element("css selector", f'[data-output="{name}"]')


def pixels(driver, image) -> np.ndarray:
    """The picture as the page shows it, read back through a canvas: (height, width, RGBA)."""
    wait_for(
        driver,
        lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", image),
        message="the picture never loaded",
    )
    width, height, data = driver.execute_script(
        """const image = arguments[0];
        const canvas = document.createElement("canvas");
        canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
        const context = canvas.getContext("2d");
        context.drawImage(image, 0, 0);
        const bytes = context.getImageData(0, 0, canvas.width, canvas.height).data;
        let text = "";
        for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
        return [canvas.width, canvas.height, btoa(text)];""",
        image,
    )
    return np.frombuffer(base64.b64decode(data), np.uint8).reshape(height, width, 4)


def expected_pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGBA"))
