"""The probe image is built once per build context and reaches every other engine by save and load, while the
archive is the one saved (no engine: the engines here are fakes that record what they were asked)."""

import hashlib
import os
import shutil
import stat

import docker
import pytest

from conformance.lab.engines import probe

pytestmark = [pytest.mark.skipif(shutil.which("busybox") is None, reason="no busybox (apt-get install busybox-static)"),
              pytest.mark.skipif(os.geteuid() != 0, reason="the archives' directory is root's alone")]


class FakeImages:
    def __init__(self, archive_gives_tag: bool = True):
        self.tags: set[str] = set()
        self.calls: list[str] = []
        self.archive_gives_tag = archive_gives_tag

    def get(self, tag: str):
        if tag not in self.tags:
            raise docker.errors.ImageNotFound(tag)
        return self

    def build(self, tag: str, **_):
        self.calls.append("build")
        self.tags.add(tag)

    def save(self, named: bool):
        assert named, "an archive saved by id loads without its tag"
        self.calls.append("save")
        return [b"archive of ", ",".join(sorted(self.tags)).encode()]

    def load(self, data: bytes):
        self.calls.append("load")
        if self.archive_gives_tag:
            self.tags.update(data.decode().removeprefix("archive of ").split(","))


class FakeClient:
    def __init__(self, **kwargs):
        self.images = FakeImages(**kwargs)


@pytest.fixture(autouse=True)
def saved_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(probe, "SAVED_DIR", tmp_path)
    return tmp_path


def test_the_first_engine_builds_and_saves_the_next_loads(saved_dir):
    first, second = FakeClient(), FakeClient()
    tag = probe.ensure_probe_image(first)  # type: ignore[arg-type]
    assert probe.ensure_probe_image(second) == tag  # type: ignore[arg-type]
    assert first.images.calls == ["build", "save"] and second.images.calls == ["load"]
    archive = f"probe-{tag.rsplit(':', 1)[1]}.tar"
    assert sorted(p.name for p in saved_dir.iterdir()) == [archive, f"{archive}.sha256"], "a partial file is left"


def test_an_engine_that_has_the_tag_is_asked_nothing_more():
    client = FakeClient()
    client.images.tags.add(probe.ensure_probe_image(FakeClient()))  # type: ignore[arg-type]
    probe.ensure_probe_image(client)  # type: ignore[arg-type]
    assert client.images.calls == []


def test_an_archive_that_does_not_give_the_tag_means_a_build():
    probe.ensure_probe_image(FakeClient())  # type: ignore[arg-type]
    odd = FakeClient(archive_gives_tag=False)
    probe.ensure_probe_image(odd)  # type: ignore[arg-type]
    assert odd.images.calls == ["load", "build", "save"]


def test_the_archive_is_loaded_only_while_it_matches_the_digest_recorded_at_its_save(saved_dir, caplog):
    """An archive changed after its save (or one whose save recorded nothing, an earlier version's) is never
    loaded: the image is built again, the log says why, and the new save records the new archive."""
    tag = probe.ensure_probe_image(FakeClient())  # type: ignore[arg-type]
    archive = saved_dir / f"probe-{tag.rsplit(':', 1)[1]}.tar"
    record = archive.with_name(f"{archive.name}.sha256")
    assert record.read_text().strip() == hashlib.sha256(archive.read_bytes()).hexdigest()
    for tamper in (lambda: archive.write_bytes(b"archive of " + tag.encode() + b",evil/backdoor:1"), record.unlink):
        tamper()
        client = FakeClient()
        probe.ensure_probe_image(client)  # type: ignore[arg-type]
        assert client.images.calls == ["build", "save"], "a changed archive was loaded"
        assert "does not match the sha256 recorded at its save" in caplog.text
        caplog.clear()
    assert record.read_text().strip() == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert stat.S_IMODE(saved_dir.stat().st_mode) == 0o700


def test_an_archive_directory_others_could_write_is_never_used(saved_dir, caplog):
    saved_dir.chmod(0o777)
    client = FakeClient()
    probe.ensure_probe_image(client)  # type: ignore[arg-type]
    assert client.images.calls == ["build"] and list(saved_dir.iterdir()) == []
    assert "writable by others" in caplog.text
