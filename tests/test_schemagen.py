"""schemagen writes the original PESTO's schemas from the same Input/Output dataclasses.

The expected schemas are the tutorial's files and the original template's
`pesto/api/input_schema.json` / `output_schema.json` (processing-factory 1.7.2), so these
tests pin equality with the original, key order included.
"""

import dataclasses
import json
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from pesto_pack import schemagen
from pesto_pack.errors import ProjectError
from pesto_pack.fields import Definition, definition, field, user_definition

TUTORIAL_INPUT_OUTPUT = """
    from dataclasses import dataclass
    from pesto_pack.fields import Definition, field, definition, user_definition
    import numpy as np

    @dataclass
    class Input:
        image:np.array = definition(Definition.Image, required=True, description="Image related to any ImageNet class")

    @dataclass
    class Output:
        category:str = field("Predicted class")
"""

# The original template's algorithm/input_output.py; only the import line changed.
TEMPLATE_INPUT_OUTPUT = """
    from dataclasses import dataclass
    from pesto_pack.fields import Definition, field, definition, user_definition
    import numpy as np
    from typing import List

    @dataclass
    class Input:
        image:np.array = definition(Definition.Image, required=True, description="Input image")
        dict_parameter:dict = definition(Definition.Metadata, description="A dict parameter", default_factory=dict)
        object_parameter:object = definition(Definition.Metadata, description="A dict parameter with more spec, of the form {'key':'value'}", default=None)
        integer_parameter: int = field("A (integer) number parameter", default=None)
        number_parameter: float = field(description="A (floating point) number parameter", default=None)
        string_parameter: str = field(description="A string parameter", default=None)

    @dataclass
    class Output:
        integer_output: int
        image:np.array = definition(Definition.Image, description="The output image")
        areas: object = definition(Definition.Polygons, description="One Polygon")
        number_output: float = field()
        dict_output: dict = definition(Definition.Metadata)
        string_output:str = field()
        image_list: List[np.array] = definition(Definition.Images, description="The output images")
        geojson:object = user_definition("geojson")
"""

GEOJSON_FEATURES = {
    "type": "array",
    "items": {
        "$schema": "http://json-schema.org/draft-06/schema#",
        "title": "GeoJSON Feature",
        "type": "object",
        "required": ["type", "properties", "geometry"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "properties": {"oneOf": [{"type": "null"}, {"type": "object"}]},
            "geometry": {"$ref": "#/definitions/Polygon"},
        },
    },
}

# The original template's pesto/api/user_definitions.json.
TEMPLATE_USER_DEFINITIONS = {
    "object_parameter": {
        "description": "A dict parameter with more spec, of the form {'key':'value'}",
        "type": "object",
        "properties": {"key": {"type": "string"}},
    },
    "geojson": {
        "description": "A Geojson.FeatureCollection containing only Polygons as geometries",
        "type": "object",
        "properties": {"features": GEOJSON_FEATURES, "type": {"type": "string"}},
    },
}

TEMPLATE_INPUT_SCHEMA = {
    "image": {"$ref": "#/definitions/Image", "description": "Input image"},
    "dict_parameter": {"$ref": "#/definitions/Metadata", "description": "A dict parameter"},
    "object_parameter": {
        "$ref": "#/definitions/Metadata",
        "description": "A dict parameter with more spec, of the form {'key':'value'}",
    },
    "integer_parameter": {"type": "integer", "description": "A (integer) number parameter"},
    "number_parameter": {"type": "number", "description": "A (floating point) number parameter"},
    "string_parameter": {"type": "string", "description": "A string parameter"},
    "required": ["image"],
}

# The template's shipped output_schema.json ends with a stale "dict_parameter" property that
# is not in Output; running the original's schemagen on the template drops it, as here.
TEMPLATE_OUTPUT_SCHEMA = {
    "integer_output": {"type": "integer"},
    "image": {"$ref": "#/definitions/Image", "description": "The output image"},
    "areas": {"$ref": "#/definitions/Polygons", "description": "One Polygon"},
    "number_output": {"type": "number", "description": ""},
    "dict_output": {"$ref": "#/definitions/Metadata", "description": ""},
    "string_output": {"type": "string", "description": ""},
    "image_list": {"$ref": "#/definitions/Images", "description": "The output images"},
    "geojson": {
        "description": "",
        "type": "object",
        "properties": {"features": GEOJSON_FEATURES, "type": {"type": "string"}},
    },
    "required": [],
}

MINIMAL_OUTPUT = """
    @dataclass
    class Output:
        category: str = field("Predicted class")
"""


def make_project(
    root: Path, input_output: str, user_definitions: dict | None = None, files: dict | None = None
) -> Path:
    """A project folder with algorithm/input_output.py and, if given, user definitions and files."""
    (root / "algorithm").mkdir(parents=True)
    (root / "algorithm" / "__init__.py").write_text("")
    (root / "algorithm" / "input_output.py").write_text(textwrap.dedent(input_output))
    (root / "pesto" / "api").mkdir(parents=True)
    if user_definitions is not None:
        (root / "pesto" / "api" / "user_definitions.json").write_text(json.dumps(user_definitions))
    for relative, text in (files or {}).items():
        (root / relative).write_text(textwrap.dedent(text))
    return root


def with_output(input_class: str) -> str:
    """An input_output.py with the given Input class and a minimal valid Output."""
    header = """
    from dataclasses import dataclass
    from typing import Optional
    from pesto_pack.fields import Definition, field, definition, user_definition
    """
    return "".join(textwrap.dedent(part) for part in (header, input_class, MINIMAL_OUTPUT))


def assert_same_schema(actual: dict, expected: dict) -> None:
    """Equal, and in the same key order at every level (the files list fields in order)."""
    assert actual == expected
    assert json.dumps(actual) == json.dumps(expected)


def generate_error(project: Path) -> str:
    """The message of the ProjectError that generating the project's schemas raises."""
    with pytest.raises(ProjectError) as error:
        schemagen.generate(project)
    return str(error.value)


@pytest.fixture
def template_project(tmp_path: Path) -> Path:
    """A project shaped like the original's template: all six definitions, primitives, geojson."""
    return make_project(tmp_path, TEMPLATE_INPUT_OUTPUT, TEMPLATE_USER_DEFINITIONS)


def test_schemagen_matches_tutorial_schemas(tmp_path: Path) -> None:
    input_schema, output_schema = schemagen.generate(make_project(tmp_path, TUTORIAL_INPUT_OUTPUT))

    assert_same_schema(
        input_schema,
        {
            "image": {
                "$ref": "#/definitions/Image",
                "description": "Image related to any ImageNet class",
            },
            "required": ["image"],
        },
    )
    assert_same_schema(
        output_schema,
        {"category": {"type": "string", "description": "Predicted class"}, "required": []},
    )


def test_schemagen_matches_original_template_input_schema(template_project: Path) -> None:
    input_schema, _ = schemagen.generate(template_project)

    assert_same_schema(input_schema, TEMPLATE_INPUT_SCHEMA)


def test_schemagen_matches_original_template_output_schema(template_project: Path) -> None:
    _, output_schema = schemagen.generate(template_project)

    assert_same_schema(output_schema, TEMPLATE_OUTPUT_SCHEMA)


def test_schemagen_maps_every_json_type(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        with_output(
            """
    @dataclass
    class Input:
        s: str = field()
        i: int = field()
        n: float = field()
        b: bool = field()
        o: dict = field()
        a: list = field()
        strings: list[str] = field()
        counts: dict[str, int] = field()
    """
        ),
    )

    input_schema, _ = schemagen.generate(project)

    types = {name: prop["type"] for name, prop in input_schema.items() if name != "required"}
    assert types == {
        "s": "string",
        "i": "integer",
        "n": "number",
        "b": "boolean",
        "o": "object",
        "a": "array",
        "strings": "array",
        "counts": "object",
    }


def test_schemagen_inlines_user_definition_with_field_description_in_place(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        with_output(
            """
    @dataclass
    class Input:
        zone: object = user_definition("zone", description="Where to look", required=True)
        area: object = user_definition("area")
    """
        ),
        {
            "zone": {"type": "object", "description": "replaced", "properties": {}},
            "area": {"type": "number", "minimum": 0},
        },
    )

    input_schema, _ = schemagen.generate(project)

    assert_same_schema(
        input_schema,
        {
            "zone": {"type": "object", "description": "Where to look", "properties": {}},
            "area": {"type": "number", "minimum": 0, "description": ""},
            "required": ["zone"],
        },
    )


def test_schemagen_gives_each_user_definition_field_its_own_description(tmp_path: Path) -> None:
    # The original shared one dict between both fields: both got "second".
    project = make_project(
        tmp_path,
        with_output(
            """
    @dataclass
    class Input:
        first: object = user_definition("zone", description="first")
        second: object = user_definition("zone", description="second")
    """
        ),
        {"zone": {"type": "object"}},
    )

    input_schema, _ = schemagen.generate(project)

    assert input_schema["first"]["description"] == "first"
    assert input_schema["second"]["description"] == "second"


def test_schemagen_strips_descriptions_and_omits_them_for_plain_fields(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        with_output(
            """
    import dataclasses

    @dataclass
    class Input:
        padded: str = field("  Some text \\n")
        plain: int = dataclasses.field(default=0)
    """
        ),
    )

    input_schema, _ = schemagen.generate(project)

    assert input_schema["padded"] == {"type": "string", "description": "Some text"}
    assert input_schema["plain"] == {"type": "integer"}


def test_schemagen_reads_postponed_annotations(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        "from __future__ import annotations\n"
        + with_output(
            """
    @dataclass
    class Input:
        count: int = field("How many")
        names: list[str] = field()
    """
        ),
    )

    input_schema, output_schema = schemagen.generate(project)

    assert input_schema["count"] == {"type": "integer", "description": "How many"}
    assert input_schema["names"] == {"type": "array", "description": ""}
    assert output_schema["category"] == {"type": "string", "description": "Predicted class"}


def test_schemagen_imports_project_package_and_restores_sys_path_and_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uses_package = """
    from dataclasses import dataclass
    from pesto_pack.fields import field
    from algorithm.kinds import Kind

    @dataclass
    class Input:
        value: Kind = field()

    @dataclass
    class Output:
        done: bool = field()
    """
    first = make_project(tmp_path / "a", uses_package, files={"algorithm/kinds.py": "Kind = int"})
    second = make_project(tmp_path / "b", uses_package, files={"algorithm/kinds.py": "Kind = str"})
    elsewhere = ModuleType("algorithm")  # some other project's package, loaded before
    monkeypatch.setitem(sys.modules, "algorithm", elsewhere)
    path_before = list(sys.path)

    first_input, _ = schemagen.generate(first)
    second_input, _ = schemagen.generate(second)

    assert first_input["value"]["type"] == "integer"
    assert second_input["value"]["type"] == "string"
    assert sys.path == path_before
    assert "algorithm.kinds" not in sys.modules
    assert sys.modules["algorithm"] is elsewhere


def test_write_creates_schema_files_indented_with_trailing_newline(tmp_path: Path) -> None:
    project = make_project(tmp_path, TUTORIAL_INPUT_OUTPUT)

    lines = schemagen.write(project)

    assert lines == ["wrote pesto/api/input_schema.json", "wrote pesto/api/output_schema.json"]
    assert (project / "pesto/api/output_schema.json").read_text() == (
        '{\n  "category": {\n    "type": "string",\n    "description": "Predicted class"\n  },\n'
        '  "required": []\n}\n'
    )
    input_schema = json.loads((project / "pesto/api/input_schema.json").read_text())
    assert input_schema["required"] == ["image"]


def test_write_without_force_keeps_existing_file_and_shows_it(tmp_path: Path) -> None:
    project = make_project(tmp_path, TUTORIAL_INPUT_OUTPUT)
    schemagen.write(project)
    existing = project / "pesto/api/output_schema.json"
    existing.write_text('{"hand": "written"}\n')

    lines = schemagen.write(project)

    assert existing.read_text() == '{"hand": "written"}\n'
    assert lines[0] == "pesto/api/input_schema.json is up to date; left as is"
    assert lines[1].startswith(
        "pesto/api/output_schema.json exists; not overwritten (use --force). Current content:\n"
        '{"hand": "written"}\n'
    )
    assert '"description": "Predicted class"' in lines[1]  # the generated schema, for comparison


def test_write_with_force_overwrites_existing_file(tmp_path: Path) -> None:
    project = make_project(tmp_path, TUTORIAL_INPUT_OUTPUT)
    existing = project / "pesto/api/output_schema.json"
    existing.write_text('{"hand": "written"}\n')

    lines = schemagen.write(project, force=True)

    assert lines == ["wrote pesto/api/input_schema.json", "overwrote pesto/api/output_schema.json"]
    assert json.loads(existing.read_text())["category"]["description"] == "Predicted class"


def test_write_leaves_original_formatted_up_to_date_file_alone(template_project: Path) -> None:
    # The original wrote indent 3 and no trailing newline: same schema, other formatting.
    existing = template_project / "pesto/api/input_schema.json"
    existing.write_text(json.dumps(TEMPLATE_INPUT_SCHEMA, indent=3))

    lines = schemagen.write(template_project)

    assert lines[0] == "pesto/api/input_schema.json is up to date; left as is"
    assert existing.read_text() == json.dumps(TEMPLATE_INPUT_SCHEMA, indent=3)


def test_write_writes_nothing_when_generation_fails(tmp_path: Path) -> None:
    project = make_project(tmp_path, TUTORIAL_INPUT_OUTPUT.replace("category:str", "category:complex"))

    with pytest.raises(ProjectError):
        schemagen.write(project, force=True)

    assert not (project / "pesto/api/input_schema.json").exists()


def test_schemagen_rejects_field_of_unknown_type(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        """
    from dataclasses import dataclass
    from pesto_pack.fields import field

    class Foo:
        pass

    @dataclass
    class Input:
        name: str = field()

    @dataclass
    class Output:
        foo: Foo = field("A foo")
    """,
    )

    assert generate_error(project) == (
        "algorithm/input_output.py: field 'foo' of Output has type Foo, which is neither a JSON "
        "type nor a PESTO definition; use definition(...) or user_definition(...)"
    )


def test_schemagen_names_generic_types_in_full(tmp_path: Path) -> None:
    project = make_project(
        tmp_path, with_output("@dataclass\nclass Input:\n    maybe: Optional[int] = field()\n")
    )

    assert "field 'maybe' of Input has type typing.Optional[int]" in generate_error(project)


def test_schemagen_rejects_unknown_user_definition_listing_known_ones(
    template_project: Path,
) -> None:
    source = template_project / "algorithm/input_output.py"
    source.write_text(source.read_text().replace('"geojson")', '"geojsn")'))

    assert generate_error(template_project) == (
        "algorithm/input_output.py: field 'geojson' of Output uses user definition 'geojsn', "
        "which pesto/api/user_definitions.json does not define "
        "(it defines: object_parameter, geojson)"
    )


def test_schemagen_rejects_user_definition_without_user_definitions_file(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        with_output("@dataclass\nclass Input:\n    zone: object = user_definition('zone')\n"),
    )

    assert generate_error(project) == (
        "algorithm/input_output.py: field 'zone' of Input uses user definition 'zone', "
        "but the project has no pesto/api/user_definitions.json"
    )


def test_schemagen_rejects_invalid_user_definitions_json(tmp_path: Path) -> None:
    project = make_project(tmp_path, TUTORIAL_INPUT_OUTPUT)
    (project / "pesto/api/user_definitions.json").write_text('{\n  "zone": {,\n}')

    assert generate_error(project).startswith("pesto/api/user_definitions.json: line 2, column 12:")


def test_schemagen_requires_input_output_py(tmp_path: Path) -> None:
    message = generate_error(tmp_path)

    assert message == (
        f"{tmp_path.resolve()}: algorithm/input_output.py not found; schemagen reads the Input "
        "and Output dataclasses from it"
    )


@pytest.mark.parametrize("missing", ["Input", "Output"])
def test_schemagen_requires_input_and_output_classes(tmp_path: Path, missing: str) -> None:
    project = make_project(
        tmp_path, TUTORIAL_INPUT_OUTPUT.replace(f"class {missing}:", f"class Other{missing}:")
    )

    assert generate_error(project).startswith(f"algorithm/input_output.py defines no {missing};")


def test_schemagen_requires_dataclasses(tmp_path: Path) -> None:
    project = make_project(
        tmp_path, TUTORIAL_INPUT_OUTPUT.replace("@dataclass\n    class Output", "class Output")
    )

    assert generate_error(project) == (
        "algorithm/input_output.py: Output is not a dataclass; decorate it with @dataclass"
    )


def test_schemagen_reports_import_failure(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        TUTORIAL_INPUT_OUTPUT.replace("import numpy as np", "import not_installed_anywhere as np"),
    )

    assert generate_error(project) == (
        "algorithm/input_output.py could not be imported: ModuleNotFoundError: "
        "No module named 'not_installed_anywhere'"
    )


def test_schemagen_rejects_field_named_required(tmp_path: Path) -> None:
    # It would collide with the schema's top-level "required" list.
    project = make_project(tmp_path, with_output("@dataclass\nclass Input:\n    required: bool = field()\n"))

    assert generate_error(project) == (
        "algorithm/input_output.py: field 'required' of Input clashes with the schema's own "
        "'required' list; rename it"
    )


def test_fields_are_dataclass_fields_with_pesto_metadata() -> None:
    @dataclasses.dataclass
    class Example:
        image: object = definition(Definition.Image, "An image", required=True, default=None)
        zone: object = user_definition("zone", default_factory=dict)
        count: int = field("How many", default=3)

    image, zone, count = dataclasses.fields(Example)
    assert dict(image.metadata) == {
        "pesto.type": Definition.Image,
        "pesto.description": "An image",
        "pesto.required": True,
        "pesto.reference": True,
    }
    assert dict(zone.metadata) == {
        "pesto.type": "zone",
        "pesto.description": "",
        "pesto.required": False,
    }
    assert dict(count.metadata) == {"pesto.description": "How many", "pesto.required": False}
    assert Example() == Example(image=None, zone={}, count=3)
    assert [d.name for d in Definition] == [
        "Image",
        "Images",
        "Polygon",
        "Polygons",
        "Metadata",
        "Metadatas",
    ]


def test_schemagen_rejects_definition_no_plugin_provides(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        with_output("@dataclass\nclass Input:\n    mask: object = definition('Mask', required=True)\n"),
    )

    message = generate_error(project)
    assert "field 'mask' of Input uses definition 'Mask', which no installed plugin" in message
    assert "Image, Images, Metadata, Metadatas, Polygon, Polygons" in message
