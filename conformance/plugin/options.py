"""The suite's own options of a run: one table, which the plugin registers with pytest (in its own group)
and ``docker-net-conformance --help`` shows one line each.  Adding an option is one entry here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TIERS = ("audit", "full")
GROUP = ("conformance", "Docker networking conformance")  # pytest's group name and its title in --help


def _variants() -> list[str]:
    from ..lab.faults import BY_NAME  # the lab takes half a second to import; --help needs no names

    return sorted(BY_NAME)


@dataclass(frozen=True)
class Option:
    flag: str
    help: str  # one line
    argparse: dict[str, Any] = field(default_factory=dict)  # what pytest's addoption takes besides help, choices
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None

    @property
    def usage(self) -> str:
        """``--engine auto|system|private``, ``--claim ID``: the flag as --help shows it."""
        if "metavar" in self.argparse:
            return f"{self.flag} {self.argparse['metavar']}"
        choices = self.choices() if callable(self.choices) else self.choices
        return f"{self.flag} {'|'.join(choices)}" if choices else self.flag

    def addoption(self, group) -> None:
        """Register with pytest (*group*: a ``parser.getgroup``)."""
        choices = self.choices() if callable(self.choices) else self.choices
        group.addoption(self.flag, help=self.help, choices=choices, **self.argparse)


OPTIONS = (
    # A Path, not the string "reports": argparse converts a string default only when parsing ends, and pytest
    # --help ends it early.
    Option("--report-dir", "where the reports and the evidence go (default: reports/)",
           dict(default=Path("reports"), type=Path, metavar="DIR")),
    Option("--engine", "system (DOCKER_HOST's), private or podman (its own), auto (default): either",
           dict(default="auto", metavar="MODE"), choices=("auto", "system", "private", "podman")),
    Option("--dockerd", "this dockerd as the private engine, with its package tree's containerd",
           dict(metavar="PATH")),
    Option("--daemon-opt", "a private engine's dockerd option, e.g. --daemon-opt=--ip-masq=false",
           dict(action="append", default=[], metavar="OPTION")),
    Option("--variant", "a private engine as a named fault or configuration (lab/faults/)",
           dict(metavar="NAME"), choices=_variants),
    Option("--claim", "only this claim (repeatable), e.g. --claim egress/masquerade-source",
           dict(action="append", default=[], metavar="ID")),
    Option("--tier", "audit: only checks that create nothing; full (default): every check",
           dict(default="full"), choices=TIERS),
    Option("--expectations", "known deviations of this host class: reported as expected failures",
           dict(type=Path, metavar="FILE")),
)
