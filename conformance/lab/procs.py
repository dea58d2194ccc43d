"""Processes read from /proc: the daemon behind a socket, its docker-proxy children, a dead run's leftovers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")


def cgroups(pid: int) -> str:
    return Path(f"/proc/{pid}/cgroup").read_text()


def processes(name: str | None = None) -> Iterator[tuple[int, list[str]]]:
    """(pid, argv) of every live process, or of those whose command name is *name*."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if name is None or comm(int(entry.name)) == name:
                yield int(entry.name), cmdline(int(entry.name))
        except OSError:  # the process ended while we looked
            continue
