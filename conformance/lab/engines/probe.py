"""The probe image, built locally from the host's busybox-static and fixtures/probe.

Tagged by the hash of its whole build context, so it is rebuilt only when
busybox or the fixtures change, and never pulled from a registry.  The first
engine to build a tag saves it (``docker save``) under the suite's state
directory; an engine that lacks the tag later loads that archive, which costs
a quarter of a build (a run starts up to three private engines).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import shutil
import subprocess
import tarfile
import threading
from pathlib import Path

import docker

from ... import FIXTURES
from ..safety.identity import STATE_DIR

PROBE_DIR = FIXTURES / "probe"
REPOSITORY = "docker-net-conformance/probe"
log = logging.getLogger("conformance")
SAVED_DIR = STATE_DIR / "images"  # one archive per tag, named by its context hash: never stale
EXPOSED_PORT = 9999  # the port fixtures/probe/Dockerfile EXPOSEs


class ProbeUnavailable(RuntimeError):
    pass


def _busybox() -> Path:
    found = shutil.which("busybox")
    if found is None:
        raise ProbeUnavailable("no busybox on PATH (apt-get install busybox-static)")
    path = Path(found).resolve()
    # A dynamic binary names its loader in the PT_INTERP segment near the start of the file.
    if b"/ld-linux" in path.read_bytes()[:4096]:
        raise ProbeUnavailable(f"{path} is not statically linked (apt-get install busybox-static)")
    return path


def _add(tar: tarfile.TarFile, name: str, data: bytes | None = None, mode: int = 0o644,
         link: str | None = None, directory: bool = False) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = 0
    if directory:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
    elif link is not None:
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, link, 0o777
        tar.addfile(info)
    else:
        info.size, info.mode = len(data or b""), mode
        tar.addfile(info, io.BytesIO(data or b""))


def build_context() -> bytes:
    """A deterministic tar of the build context: same inputs, same bytes, same tag."""
    busybox = _busybox()
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(PROBE_DIR.rglob("*")):
            relative = path.relative_to(PROBE_DIR).as_posix()
            if path.is_dir():
                _add(tar, relative, directory=True)
            else:
                _add(tar, relative, path.read_bytes(), mode=path.stat().st_mode & 0o777)
        for directory in ("rootfs", "rootfs/bin", "rootfs/tmp", "rootfs/etc"):
            _add(tar, directory, directory=True)
        _add(tar, "rootfs/bin/busybox", busybox.read_bytes(), mode=0o755)
        for applet in sorted(set(applets) - {"busybox"}):
            _add(tar, f"rootfs/bin/{applet}", link="busybox")
    return buffer.getvalue()


def ensure_probe_image(client: docker.DockerClient) -> str:
    """The probe's tag in *client*'s engine: there already, else loaded from the archive an earlier build
    saved, else built (and saved)."""
    context = build_context()
    digest = hashlib.sha256(context).hexdigest()[:16]
    tag = f"{REPOSITORY}:{digest}"
    if _has(client, tag):
        return tag
    saved = SAVED_DIR / f"probe-{digest}.tar"
    if saved.exists():
        with contextlib.suppress(docker.errors.APIError):  # an archive this engine cannot read: build
            client.images.load(saved.read_bytes())
        if _has(client, tag):
            return tag
    client.images.build(fileobj=io.BytesIO(context), custom_context=True, tag=tag, rm=True)
    try:
        _save(client, tag, saved)
    except (docker.errors.APIError, OSError) as exc:  # the next engine builds too: slower, no less right
        log.warning("could not save the probe image to %s: %s", saved, exc)
    return tag


def _has(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def _save(client: docker.DockerClient, tag: str, path: Path) -> None:
    """``docker save`` *tag* to *path*, whole or not at all (engines that build at once each write their own
    file, then rename it into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        with open(partial, "wb") as out:
            for chunk in client.images.get(tag).save(named=True):
                out.write(chunk)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
