"""The built-in types as a whole: the original's definitions, suffixes, light imports."""

import subprocess
import sys
from pathlib import Path

from pesto_pack.plugins import default_registry

# The `definitions` that the original PESTO's describe answers (and that existing projects'
# expected_describe.json hold), written out as data.
ORIGINAL_DEFINITIONS = {
    "Image": {
        "$schema": "http://json-schema.org/draft-06/schema#",
        "description": "Image to process : it can be an url or the raw bytes encoded in base64",
        "type": "string",
    },
    "Images": {"type": "array", "items": {"$ref": "#/definitions/Image"}},
    "Polygon": {
        "$schema": "http://json-schema.org/draft-06/schema#",
        "title": "Polygon",
        "description": "GeoJSON Polygon",
        "type": "object",
        "required": ["type", "coordinates"],
        "properties": {
            "type": {"type": "string", "enum": ["Polygon"]},
            "coordinates": {
                "type": "array",
                "items": {
                    "type": "array",
                    "minItems": 4,
                    "items": {"type": "array", "minItems": 2, "items": {"type": "number"}},
                },
            },
            "bbox": {"type": "array", "minItems": 4, "items": {"type": "number"}},
        },
    },
    "Polygons": {"type": "array", "items": {"$ref": "#/definitions/Polygon"}},
    "Metadata": {"type": "object"},
    "Metadatas": {"type": "array", "items": {"$ref": "#/definitions/Metadata"}},
}


def test_builtin_definitions_are_the_originals_in_its_order():
    definitions = default_registry().definitions()
    assert definitions == ORIGINAL_DEFINITIONS
    assert list(definitions) == list(ORIGINAL_DEFINITIONS)


def test_list_types_know_their_item_type():
    types = default_registry().types
    assert {name: t.items.name for name, t in types.items() if t.items} == {
        "Images": "Image",
        "Polygons": "Polygon",
        "Metadatas": "Metadata",
    }


def test_test_file_suffixes_map_to_the_originals_types():
    registry = default_registry()
    found = {s: registry.type_for_file_suffix(s).name for s in registry.known_suffixes()}
    assert found == {
        ".string": "string", ".txt": "string", ".int": "integer", ".integer": "integer",
        ".float": "number", ".number": "number", ".bool": "boolean", ".boolean": "boolean",
        ".json": "object", ".geojson": "Polygon", ".png": "Image", ".jpg": "Image",
        ".jpeg": "Image", ".tif": "Image", ".tiff": "Image",
    }  # fmt: skip
    assert registry.type_for_file_suffix(".PNG").name == "Image"
    assert registry.type_for_file_suffix(".csv") is None


def test_payload_types_and_the_project_model_import_no_docker_pytest_or_deepdiff():
    code = (
        "import sys\n"
        "import pesto_pack.types.images, pesto_pack.types.geometry, pesto_pack.types.metadata\n"
        "import pesto_pack.types.primitives, pesto_pack.project\n"
        "from pesto_pack.plugins import default_registry\n"
        "default_registry()\n"
        "print(sorted(m for m in ('docker', 'pytest', 'deepdiff') if m in sys.modules))\n"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def test_serving_a_project_without_images_imports_no_numpy_pillow_or_tifffile():
    # Every process registers `Image`; its codecs (numpy, Pillow, tifffile: ~0.2 s and ~18 MB
    # of a service's start-up) are imported only when an image is first decoded or encoded.
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "import pesto_serve.app\n"
        "from serve_support import served\n"
        "with served('echo') as (app, service):\n"
        "    assert app.get('/api/v1/health').status_int == 200\n"
        "    app.post_json('/api/v1/process', {'text': 'a', 'number': 1})\n"
        "print(sorted(m for m in ('numpy', 'PIL', 'tifffile') if m in sys.modules))\n"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip().splitlines()[-1] == "[]"
