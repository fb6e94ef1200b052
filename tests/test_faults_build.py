"""`pesto-pack build` refuses a hostile or tampered resource of requirements.json, end to end.

The resource module's own tests pin every unsafe member kind (test_build_resources.py); these
run the command's `main()` as a person runs it, on a project whose archive is the hostile one,
and check the exit status, the one-line error naming the resource, and that nothing was
written outside the build's cache.
"""

import json
import shutil
import tarfile
from pathlib import Path

import pytest

from archive_support import entry, make_archive, sha256
from pesto_pack.cli import main
from pytest_plugin_helpers import PROJECTS


def project_with_archive(tmp_path: Path, members: list, data: dict, digest: str | None = "actual") -> Path:
    """The `resourceful` project whose `greeting` archive holds `members`."""
    root = Path(shutil.copytree(PROJECTS / "resourceful", tmp_path / "resourceful"))
    archive = make_archive(root / "resources" / "greeting.tar.gz", members, data)
    requirements = root / "pesto" / "build" / "requirements.json"
    settings = json.loads(requirements.read_text())
    settings["requirements"]["greeting"]["sha256"] = sha256(archive) if digest == "actual" else digest
    requirements.write_text(json.dumps(settings))
    build = root / "pesto" / "build" / "build.json"
    build.write_text(json.dumps({**json.loads(build.read_text()), "workspace": str(tmp_path / "workspace")}))
    return root


@pytest.mark.parametrize(
    ("members", "problem"),
    [
        ([entry("/tmp/pesto-planted.txt")], "an absolute path"),
        ([entry("../../planted.txt")], "a path through '..'"),
        ([entry("data", tarfile.SYMTYPE, "/etc")], "a link to the absolute path '/etc'"),
        ([entry("up", tarfile.SYMTYPE, "../../.."), entry("up/planted.txt")], "outside the target folder"),
        ([entry("hard", tarfile.LNKTYPE, "../../etc/passwd")], "outside the target folder"),
    ],
    ids=[
        "absolute path",
        "dot dot",
        "absolute symlink",
        "symlink out then a file through it",
        "hard link out",
    ],
)
def test_build_refuses_an_unsafe_archive_and_writes_nothing_outside(tmp_path, capsys, members, problem):
    data = {member.name: b"planted" for member in members if member.isfile()}
    project = project_with_archive(tmp_path, [entry("suffix.txt"), *members], {"suffix.txt": b"!", **data})

    status = main(["build", str(project)])

    out, err = capsys.readouterr()
    assert (status, out) == (1, "")
    assert "\npesto-pack build: error: resource 'greeting'" in err
    assert problem in err and "refusing" in err
    planted = [p for p in tmp_path.rglob("*planted*")] + [p for p in Path("/tmp").glob("pesto-planted*")]
    assert planted == []


def test_build_refuses_a_resource_whose_sha256_does_not_match(tmp_path, capsys):
    project = project_with_archive(tmp_path, [entry("suffix.txt")], {"suffix.txt": b"!"}, digest="0" * 64)

    status = main(["build", str(project)])

    out, err = capsys.readouterr()
    assert (status, out) == (1, "")
    assert "resource 'greeting': sha256 mismatch" in err and "0" * 64 in err
    assert sha256(project / "resources" / "greeting.tar.gz") in err
