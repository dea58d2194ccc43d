"""The probe image, built locally from the host's busybox-static and fixtures/probe.

Tagged by the hash of its whole build context, so it is rebuilt only when
busybox or the fixtures change, and never pulled from a registry.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import docker

PROBE_DIR = Path(__file__).resolve().parent.parent.parent / "fixtures" / "probe"
REPOSITORY = "docker-net-conformance/probe"


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
    """The probe's tag in *client*'s engine, building it only if that engine lacks it."""
    context = build_context()
    tag = f"{REPOSITORY}:{hashlib.sha256(context).hexdigest()[:16]}"
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        client.images.build(fileobj=io.BytesIO(context), custom_context=True, tag=tag, rm=True)
    return tag
