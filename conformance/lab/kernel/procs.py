"""Processes, through psutil: the daemon behind a socket, its docker-proxy children, a dead run's leftovers.

A process that ends while it is looked at raises ProcessLookupError (an OSError, as reading /proc would).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil


def comm(pid: int) -> str:
    """The kernel's name of the process (``/proc/PID/comm``)."""
    try:
        return psutil.Process(pid).name()
    except psutil.NoSuchProcess:
        raise ProcessLookupError(pid) from None


def cmdline(pid: int) -> list[str]:
    """The process's command line, its program first."""
    try:
        return psutil.Process(pid).cmdline()
    except psutil.NoSuchProcess:
        raise ProcessLookupError(pid) from None


def executable(pid: int) -> str:
    """The process's executable, as the kernel names it (``/proc/PID/exe``)."""
    try:
        return psutil.Process(pid).exe()
    except psutil.NoSuchProcess:
        raise ProcessLookupError(pid) from None


def uids(pid: int) -> tuple[int, int, int]:
    """The process's real, effective and saved user ids."""
    try:
        real, effective, saved = psutil.Process(pid).uids()
    except psutil.NoSuchProcess:
        raise ProcessLookupError(pid) from None
    return real, effective, saved


def environment(pid: int) -> dict[str, str]:
    """The environment the process started with."""
    try:
        return psutil.Process(pid).environ()
    except psutil.NoSuchProcess:
        raise ProcessLookupError(pid) from None


def cgroups(pid: int) -> str:
    """``/proc/PID/cgroup``, whose paths name a container's id (psutil does not read it)."""
    return Path(f"/proc/{pid}/cgroup").read_text()


def processes(name: str | None = None, parent: int | None = None) -> Iterator[tuple[int, list[str]]]:
    """(pid, argv) of every live process, or of those whose command name is *name* and whose parent is
    *parent*."""
    for process in psutil.process_iter(["name", "cmdline", "ppid"]):
        if name in (None, process.info["name"]) and parent in (None, process.info["ppid"]):
            yield process.pid, process.info["cmdline"] or []
