"""The probe image is built once per build context and reaches every other engine by save and load (no engine,
no root: the engines here are fakes that record what they were asked)."""

import shutil

import docker
import pytest

from conformance.lab.engines import probe

pytestmark = pytest.mark.skipif(shutil.which("busybox") is None, reason="no busybox (apt-get install busybox-static)")


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
    assert [p.name for p in saved_dir.iterdir()] == [f"probe-{tag.rsplit(':', 1)[1]}.tar"], "a partial file is left"


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
