"""Where the reports are written: directories only their writer controls, and files replaced whole.

The suite runs as root on shared hosts, and the report tools write where they are told (``--report-dir``,
``merge --out``, ``update-expectations --out``).  A directory another user owns or can write is one in which
they can plant a link at ``report.json`` (root's write then lands in the file it points to) or swap the
directory itself, so such a directory is refused, not written into (one of root's is not: root can do all
that anyway).  In a directory that passes, every file is
written to a fresh temporary name and renamed over its final name: a link there is replaced, never followed,
and an old file is never truncated before its replacement is complete (text that cannot be encoded fails
before anything is touched).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import stat
from pathlib import Path


class WriteError(ValueError):
    """A report cannot be written where it was asked to go without trusting someone else's directory."""


def _user(uid: int) -> str:
    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f"uid {uid}"


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


def _refusal(path: Path, info: os.stat_result) -> str | None:
    """Why the directory with *info* is not one to write reports into, or None."""
    if info.st_uid not in (os.geteuid(), 0):  # root, who can write anywhere, is trusted by everyone anyway
        return f"owned by {_user(info.st_uid)}, not by {_user(os.geteuid())} or root: refusing to write into it"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return (f"mode {stat.S_IMODE(info.st_mode):04o} lets group or others write in it: refusing to write into "
                f"it (chmod go-w {path})")
    return None


def _open_dir(path: Path) -> int:
    """A descriptor of directory *path* (not through a link at its last component), checked as it is opened."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if Path(path).is_symlink():
            raise WriteError(f"{path}: a symbolic link: refusing to write through it (give the directory it "
                             "points to)") from None
        raise WriteError(f"{path}: {_reason(exc)}") from None
    problem = _refusal(path, os.fstat(fd))
    if problem:
        os.close(fd)
        raise WriteError(f"{path}: {problem}")
    return fd


def checked_dir(path: Path) -> Path:
    """*path*, made (mode 0755, the caller's, and so are the parents it needs) if missing, or WriteError: a
    link, a file, a directory that is neither the caller's nor root's, or that group or others can write."""
    path = Path(path)
    missing, candidate = [], path
    while not os.path.lexists(candidate):
        missing.append(candidate)
        candidate = candidate.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o755)
        except FileExistsError:
            pass  # made meanwhile (an xdist worker beside the controller): checked below as any existing one
        except OSError as exc:
            raise WriteError(f"{path}: cannot make the directory: {_reason(exc)}") from None
    os.close(_open_dir(path))
    return path


def write_atomic(path: Path, content: str | bytes) -> Path:
    """Write *content* (text as UTF-8) to *path* whole: into a temporary file beside it, created anew and
    synced, then renamed over *path*.  A link at *path* is replaced, not followed; the directory is checked
    as checked_dir checks it, on the open descriptor the file is then made in."""
    path = Path(path)
    try:
        data = content.encode("utf-8") if isinstance(content, str) else content
    except UnicodeEncodeError as exc:
        raise WriteError(f"{path}: cannot encode the text as UTF-8 (a lone surrogate at {exc.start}): "
                         "nothing written") from None
    directory = _open_dir(path.parent)
    try:
        for _ in range(100):
            temporary = f".{path.name}.{secrets.token_hex(6)}.tmp"
            try:
                fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                             dir_fd=directory)
                break
            except FileExistsError:
                continue
        else:
            raise WriteError(f"{path}: no free temporary name beside it")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path.name, src_dir_fd=directory, dst_dir_fd=directory)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=directory)
            raise
        os.fsync(directory)
    except OSError as exc:
        raise WriteError(f"{path}: cannot write: {_reason(exc)}") from None
    finally:
        os.close(directory)
    return path
