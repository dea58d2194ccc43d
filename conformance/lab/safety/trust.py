"""What the suite, running as root, may trust: paths only root can change, root's own tools, files it recorded.

The suite runs as root on shared hosts.  Whatever it connects to, runs, loads or
writes through must be something no other user could have put there: a path
every directory of which only root can write (``unsafe_path``), a directory of
the suite's own that only root can enter (``private_dir``), a program from a
fixed PATH of root's (``root_tool``, never a daemon's environment), and files
whose sha256 it recorded itself (``sha256``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import stat
from collections import deque
from pathlib import Path

# Root's tools, whatever PATH the suite or a daemon was started with (each directory also checked, see root_tool).
ROOT_PATH = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")
# A chain of symlinks longer than this is a loop, or a maze no path of root's needs (the kernel stops at 40).
MAX_SYMLINKS = 40


class Untrusted(RuntimeError):
    """A path, directory or file the suite will not use as root; the message names its owner or its mode."""


def user(uid: int) -> str:
    """``nobody (uid 65534)``: a user as a problem line names it."""
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _others_write(st: os.stat_result) -> bool:
    """Whether anyone but root may write *st*: other users, or a group other than root's."""
    return bool(st.st_mode & stat.S_IWOTH or (st.st_mode & stat.S_IWGRP and st.st_gid != 0))


def unsafe_path(path: str | os.PathLike[str]) -> str | None:
    """Why a user other than root could replace *path* or anything it leads through; None when only root can.

    Walked one entry at a time, as the kernel resolves it, following each symlink where it points: every
    directory on the way and the entry itself must be root's, and no directory may be writable by others,
    except a sticky one (``/tmp``) whose next entry is root's (only root may rename or remove that).  The
    entry itself may be readable or writable by a group (``docker.sock`` is ``root:docker 0660``), not by
    everyone."""
    start = Path(path)
    if not start.is_absolute():
        return f"{start} is not an absolute path"
    pending = deque(start.parts[1:])
    current = Path("/")
    try:
        here = os.lstat(current)
        hops = 0
        while pending:
            part = pending.popleft()
            if part == "..":
                current = current.parent  # *current* is a real directory: its parent is too
                here = os.lstat(current)
                continue
            entry = current / part
            found = os.lstat(entry)
            if found.st_uid != 0:
                return f"{entry} is owned by {user(found.st_uid)}"
            if _others_write(here) and not here.st_mode & stat.S_ISVTX:
                return f"{current}, on the way to {start}, is writable by others (mode {stat.filemode(here.st_mode)})"
            if stat.S_ISLNK(found.st_mode):
                hops += 1
                if hops > MAX_SYMLINKS:
                    return f"{start} leads through more than {MAX_SYMLINKS} symlinks"
                target = Path(os.readlink(entry))
                if target.is_absolute():
                    current, here = Path("/"), os.lstat("/")
                    pending.extendleft(reversed(target.parts[1:]))
                else:
                    pending.extendleft(reversed(target.parts))
                continue
            if pending and not stat.S_ISDIR(found.st_mode):
                return f"{entry}, on the way to {start}, is not a directory"
            current, here = entry, found
    except OSError as exc:
        return f"{start}: {exc.strerror}"
    if here.st_uid != 0:
        return f"{current} is owned by {user(here.st_uid)}"
    if here.st_mode & stat.S_IWOTH:
        return f"{current} is writable by everyone (mode {stat.filemode(here.st_mode)})"
    return None


def private_dir(path: Path) -> Path:
    """*path*, a directory of the suite's that only root can enter: made 0700 when missing (its missing
    parents too), else checked to be a real directory of root's, not writable by others, and narrowed to
    0700 (what an earlier version made 0755 holds nothing another user wrote).  Untrusted otherwise:
    the suite keeps engines' data, sockets, locks and images there, and loads and runs them as root."""
    parent = path.parent
    if not parent.exists():
        private_dir(parent)
    reason = unsafe_path(parent)
    if reason is not None:
        raise Untrusted(f"{path}: {reason}")
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:  # ELOOP: a symlink; ENOTDIR: a file
        raise Untrusted(f"{path} is not a directory of its own: {exc.strerror}") from None
    try:
        found = os.fstat(fd)
        if found.st_uid != 0:
            raise Untrusted(f"{path} is owned by {user(found.st_uid)}, not root")
        if _others_write(found):
            raise Untrusted(f"{path} is writable by others (mode {stat.filemode(found.st_mode)}): remove it, "
                            "and the suite makes it again")
        if stat.S_IMODE(found.st_mode) != 0o700:
            os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return path


def root_tool(name: str) -> str:
    """The absolute path of root's program *name*: the first of ROOT_PATH's directories holding it, each
    directory on the way and the program itself only root's to change.  FileNotFoundError when none does.
    What the suite runs as root never comes from a daemon's environment or a PATH someone else chose."""
    for directory in ROOT_PATH:
        candidate = Path(directory) / name
        if os.access(candidate, os.X_OK) and candidate.is_file() and unsafe_path(candidate) is None:
            return str(candidate)
    raise FileNotFoundError(f"no {name} of root's in {':'.join(ROOT_PATH)}")


def sha256(path: Path) -> str:
    """The sha256 of *path*'s contents, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
