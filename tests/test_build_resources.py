"""Resources of requirements.json: fetched, checked by sha256, and unpacked only when safe."""

import tarfile
from pathlib import Path

import pytest

from archive_support import entry, make_archive, sha256
from pesto_pack.build import resources
from pesto_pack.errors import ProjectError
from pesto_pack.profiles import Resource


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_archive_is_unpacked_with_its_folders_and_inner_links(tmp_path, cache):
    archive = make_archive(
        tmp_path / "model.tar.gz",
        [
            entry("weights/", tarfile.DIRTYPE),
            entry("weights/a.bin"),
            entry("latest", tarfile.SYMTYPE, "weights/a.bin"),
        ],
        {"weights/a.bin": b"\x00\x01"},
    )
    fetched = resources.fetch(Resource("model", "model.tar.gz", "/opt/model"), tmp_path, cache)
    folder = resources.unpacked(fetched, cache)
    assert (folder / "weights" / "a.bin").read_bytes() == b"\x00\x01"
    assert (folder / "latest").is_symlink() and (folder / "latest").read_bytes() == b"\x00\x01"
    assert fetched.sha256 == sha256(archive)


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        (entry("/etc/passwd"), "an absolute path"),
        (entry("../outside.txt"), "a path through '..'"),
        (entry("data/../../outside.txt"), "a path through '..'"),
        (entry("etc", tarfile.SYMTYPE, "/etc"), "a link to the absolute path '/etc'"),
        (entry("data/up", tarfile.SYMTYPE, "../../.."), "outside the target folder"),
        (entry("hard", tarfile.LNKTYPE, "../secret"), "outside the target folder"),
        (entry("dev/sda", tarfile.BLKTYPE), "a device file or FIFO"),
        (entry("dev/tty", tarfile.CHRTYPE), "a device file or FIFO"),
        (entry("pipe", tarfile.FIFOTYPE), "a device file or FIFO"),
    ],
)
def test_unsafe_archive_is_refused_before_anything_is_written(tmp_path, cache, member, problem):
    make_archive(tmp_path / "bad.tar.gz", [entry("fine.txt"), member], {"fine.txt": b"ok"})
    fetched = resources.fetch(Resource("bad", "bad.tar.gz", "/opt/bad"), tmp_path, cache)
    with pytest.raises(ProjectError) as error:
        resources.unpacked(fetched, cache)
    assert problem in str(error.value)
    assert "resource 'bad'" in str(error.value) and "refusing" in str(error.value)
    assert not (cache / "resources" / fetched.sha256).exists()
    assert not (tmp_path / "outside.txt").exists()


def test_a_link_inside_the_target_is_accepted(tmp_path, cache):
    make_archive(
        tmp_path / "ok.tar.gz",
        [
            entry("a/b.txt"),
            entry("a/c", tarfile.SYMTYPE, "b.txt"),
            entry("d", tarfile.SYMTYPE, "a/../a/b.txt"),
        ],
        {"a/b.txt": b"b"},
    )
    fetched = resources.fetch(Resource("ok", "ok.tar.gz", "/opt/ok"), tmp_path, cache)
    folder = resources.unpacked(fetched, cache)
    assert (folder / "a" / "c").read_text() == "b"


def test_sha256_mismatch_is_refused_naming_the_resource(tmp_path, cache):
    (tmp_path / "weights.bin").write_bytes(b"not the expected weights")
    with pytest.raises(ProjectError) as error:
        resources.fetch(Resource("weights", "weights.bin", "/opt/w", sha256="0" * 64), tmp_path, cache)
    message = str(error.value)
    assert "resource 'weights'" in message and "sha256 mismatch" in message
    assert "0" * 64 in message and sha256(tmp_path / "weights.bin") in message


def test_matching_sha256_in_capitals_is_accepted(tmp_path, cache):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"weights")
    fetched = resources.fetch(
        Resource("weights", "weights.bin", "/opt/w", sha256=sha256(path).upper()), tmp_path, cache
    )
    assert fetched.path == path


def test_file_uri_and_plain_file_go_into_the_target_folder(tmp_path, cache):
    path = tmp_path / "labels.txt"
    path.write_text("cat\ndog\n")
    fetched = resources.fetch(Resource("labels", path.as_uri(), "/opt/labels"), tmp_path / "elsewhere", cache)
    assert fetched.path == path and not fetched.is_archive and not fetched.is_wheel
    assert (resources.unpacked(fetched, cache) / "labels.txt").read_text() == "cat\ndog\n"


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [
        ("missing.tar.gz", "/opt/x", "does not exist"),
        ("file://relative/x.tar.gz", "/opt/x", "not an absolute file URI"),
        ("gs://bucket/x.tar.gz", "/opt/x", "gs:// sources are not supported"),
        ("x.tar.gz", None, "needs `to`"),
        ("x.tar.gz", "relative/folder", "needs `to`"),
    ],
)
def test_unusable_resource_is_refused_with_what_to_do(tmp_path, cache, source, target, message):
    with pytest.raises(ProjectError) as error:
        resources.fetch(Resource("x", source, target), tmp_path, cache)
    assert message in str(error.value)


def test_wheel_needs_no_target(tmp_path, cache):
    wheel = tmp_path / "extra-1.0-py3-none-any.whl"
    wheel.write_bytes(b"zip")
    fetched = resources.fetch(Resource("extra", wheel.name, None), tmp_path, cache)
    assert fetched.is_wheel


def test_download_with_sha256_is_kept_and_not_fetched_again(tmp_path, cache, file_server):
    served, url, requests = file_server.folder, file_server.url, file_server.requests
    archive = make_archive(served / "model.tar.gz", [entry("m.bin")], {"m.bin": b"model"})
    resource = Resource("model", f"{url}/model.tar.gz", "/opt/model", sha256=sha256(archive))
    first = resources.fetch(resource, tmp_path, cache)
    second = resources.fetch(resource, tmp_path, cache)
    assert requests == ["/model.tar.gz"]
    assert first.path == second.path and first.path.name == "model.tar.gz"
    assert (resources.unpacked(first, cache) / "m.bin").read_bytes() == b"model"


def test_download_that_does_not_match_its_sha256_is_refused_and_not_kept(tmp_path, cache, file_server):
    (file_server.folder / "model.bin").write_bytes(b"tampered")
    resource = Resource("model", f"{file_server.url}/model.bin", "/opt/model", sha256="1" * 64)
    with pytest.raises(ProjectError, match="resource 'model': sha256 mismatch"):
        resources.fetch(resource, tmp_path, cache)
    assert not any((cache / "downloads").iterdir())


def test_failed_download_names_the_url(tmp_path, cache, file_server):
    url = file_server.url
    with pytest.raises(ProjectError, match=f"cannot download {url}/absent.tar.gz"):
        resources.fetch(Resource("absent", f"{url}/absent.tar.gz", "/opt/a"), tmp_path, cache)
