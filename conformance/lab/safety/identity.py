"""The identity of one run: every object the suite creates carries it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

LABEL = "io.github.docker-net-conformance.run"
PREFIX = "cf"
# Where runs keep what lasts as long as they do: private engines' data-roots, liveness locks, reservations
# (STATE_DIR), and the private engines' sockets and exec-roots (RUN_DIR).  Each entry carries a run's prefix.
# What lasts across runs: the probe image's archive (STATE_DIR/images) and fetched engine builds (CACHE_DIR).
# Each is root's and 0700 (trust.private_dir, before use): the suite loads, runs and connects to what they hold.
STATE_DIR = Path("/var/lib/docker-net-conformance")
RUN_DIR = Path("/run/docker-net-conformance")
CACHE_DIR = Path("/var/cache/docker-net-conformance")


@dataclass(frozen=True)
class Run:
    """A run id and the names derived from it.

    Names start with ``cf<id>`` so a later sweep (and a human) can tell the
    suite's objects from everything else; interface names stay within the
    kernel's 15 characters.
    """

    id: str = field(default_factory=lambda: secrets.token_hex(3))

    @property
    def prefix(self) -> str:
        return f"{PREFIX}{self.id}"

    def name(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"

    def ifname(self, suffix: str) -> str:
        name = f"{self.prefix}{suffix}"
        if len(name) > 15:
            raise ValueError(f"interface name {name!r} is longer than 15 characters")
        return name

    @property
    def labels(self) -> dict[str, str]:
        return {LABEL: self.id}
