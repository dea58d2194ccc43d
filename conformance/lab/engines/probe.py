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
from ..safety.trust import Untrusted, private_dir

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
    try:
        saved: Path | None = private_dir(SAVED_DIR) / f"probe-{digest}.tar"
    except (Untrusted, OSError) as exc:  # nothing is loaded from, or saved to, a directory others could write
        log.warning("not loading or saving the probe image archive: %s", exc)
        saved = None
    archive = _intact(saved) if saved is not None else None
    if archive is not None:
        with contextlib.suppress(docker.errors.APIError):  # an archive this engine cannot read: build
            client.images.load(archive)
        if _has(client, tag):
            return tag
    client.images.build(fileobj=io.BytesIO(context), custom_context=True, tag=tag, rm=True)
    if saved is not None:
        try:
            _save(client, tag, saved)
        except (docker.errors.APIError, OSError) as exc:  # the next engine builds too: slower, no less right
            log.warning("could not save the probe image to %s: %s", saved, exc)
    return tag


def _record(path: Path) -> Path:
    """Where the sha256 of the archive *path* is recorded, at its save."""
    return path.with_name(f"{path.name}.sha256")


def _intact(path: Path) -> bytes | None:
    """The archive at *path* when it matches the sha256 recorded at its save (read once: what is checked is
    what is loaded); None when there is none, or when it differs, which the log says."""
    try:
        archive = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        recorded = _record(path).read_text().strip()
    except FileNotFoundError:
        recorded = "none"
    if hashlib.sha256(archive).hexdigest() != recorded:
        log.warning("the probe image archive %s does not match the sha256 recorded at its save (%s): building the "
                    "image instead", path, recorded)
        return None
    return archive


def _has(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def _save(client: docker.DockerClient, tag: str, path: Path) -> None:
    """``docker save`` *tag* to *path*, whole or not at all (engines that build at once each write their own
    file, then rename it into place), and its sha256 beside it, written after it: an archive replaced
    between the two renames does not match the record it meets, and is built again, never loaded."""
    suffix = f"{os.getpid()}.{threading.get_ident()}"
    partial = path.with_name(f"{path.name}.{suffix}")
    record = _record(path)
    partial_record = record.with_name(f"{record.name}.{suffix}")
    digest = hashlib.sha256()
    try:
        with open(partial, "wb") as out:
            for chunk in client.images.get(tag).save(named=True):
                digest.update(chunk)
                out.write(chunk)
        partial_record.write_text(digest.hexdigest() + "\n")
        os.replace(partial, path)
        os.replace(partial_record, record)
    finally:
        partial.unlink(missing_ok=True)
        partial_record.unlink(missing_ok=True)
