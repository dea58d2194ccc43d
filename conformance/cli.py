"""The command line: ``docker-net-conformance`` (the console script) and ``python -m conformance`` are this.

COMMANDS holds the subcommands, one entry each: its name, the one line ``--help`` shows (also its own
``--help``'s description) and whether it needs root; each runs as ``main`` of
conformance/commands/<name>.py.  With no command, or ``run``, the arguments go to pytest, which runs the
checks with the suite's plugin: this is where the plugin is loaded (``-p conformance.plugin``); it is not
auto-loaded, so the environment's other pytest sessions never see it.

A new command is one entry in COMMANDS and a module conformance/commands/<name>.py whose
``main(argv, parser) -> exit status`` adds its arguments to *parser* (named and described from the entry)
and parses *argv*.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path

import pytest

from .plugin.options import OPTIONS

PROG = "docker-net-conformance"  # the console script, named after the distribution


@dataclass(frozen=True)
class Command:
    name: str
    summary: str  # one line
    root: bool = False  # creates namespaces or engines: refused at once, with the fix, when not root

    @property
    def module(self) -> str:
        """Its module, conformance/commands/<name>.py, imported when it runs, so ``--help`` stays fast."""
        return f"{__package__}.commands.{self.name.replace('-', '_')}"

    def __call__(self, argv: list[str]) -> int:
        if self.root and os.geteuid() != 0 and not {"-h", "--help"} & set(argv):
            print(f"{PROG} {self.name}: not root: it creates and removes network namespaces and engines "
                  f"— run it as root (sudo {PROG} {self.name})", file=sys.stderr)
            return 4
        main: Callable[[list[str], argparse.ArgumentParser], int] = importlib.import_module(self.module).main
        return main(argv, argparse.ArgumentParser(prog=f"{PROG} {self.name}", description=self.summary))


COMMANDS = {command.name: command for command in (
    Command("run", "run the checks and write the reports (what no command means)"),
    Command("list", "list the claims a run would check, and run nothing (needs no root, no engine)"),
    Command("cleanup", "remove what runs that died left behind; live runs are never touched", root=True),
    Command("mutate", "prove the checks catch their faults and pass on unusual healthy engines", root=True),
    Command("repeat", "run the suite N times: claims whose outcome changed, what each run left", root=True),
    Command("benchmark", "time the suite, serial and with -n 2, against the engine's floor", root=True),
    Command("matrix", "the catalog on several engines: a claims x engines matrix, differences first", root=True),
    Command("diff", "compare two report.json claim by claim (Markdown); exit 1 on a regression"),
    Command("merge", "one claims x hosts matrix (matrix.md, matrix.html) from many report.json"),
    Command("update-expectations", "write or update an expectations file from a run's failures"),
)}

EXIT_STATUS = """\
exit status: 0 no claim failed unexpectedly and nothing errored; 1 a claim failed or errored, a
documented inaccuracy or known deviation unexpectedly held, or a packet of the suite left the
machine; 2 a report tool's input is not a report; 4 a usage problem (or a root-only command without
root)."""


def usage() -> str:
    width = max(len(name) for name in COMMANDS) + 2
    option_width = max(len(option.usage) for option in OPTIONS) + 2
    return "\n".join([
        f"usage: {PROG} [run] [OPTION ...] [PYTEST OPTION ...]",
        f"       {PROG} COMMAND [ARG ...]          (COMMAND --help: what it takes)",
        "",
        "Checks, claim by claim, that this host's Docker networking does what the articles say, against a",
        "real engine and real kernel namespaces; run as root. `python -m conformance` is the same command.",
        "",
        "commands:",
        *(f"  {name:<{width}}{command.summary}" for name, command in COMMANDS.items()),
        "",
        "options of a run (list selects with the same --claim and --tier):",
        *(f"  {option.usage:<{option_width}}{option.help}" for option in OPTIONS),
        "",
        "pytest options pass through: every other argument goes to pytest, which runs the checks, e.g.",
        "  -k EXPR  select claims by id and words (-k 'egress and not rule')    -n N  run checks in parallel",
        "  -x  stop at the first failure    -v  one line per claim    --maxfail N  stop after N failures",
        f"All of pytest's options, with the suite's in their own group: {PROG} run --help",
        "The same run through plain pytest: pytest -p conformance.plugin --pyargs conformance.checks ...",
        "",
        EXIT_STATUS,
    ])


def version() -> str:
    from .catalog import catalog
    from .reports.report_json import SCHEMA

    try:
        suite = installed_version(PROG)
    except PackageNotFoundError:
        suite = "(not installed: run from a checkout)"
    claims = catalog()
    per_topic = Counter(claim.topic for claim in claims)
    width = max(map(len, claims.topics))
    return "\n".join([
        f"{PROG} {suite}",
        f"catalog: {len(claims)} claims in {len(claims.topics)} topics, {len(claims.out_of_scope)} passages "
        "out of scope",
        *(f"  {topic:<{width}}  {per_topic[topic]:>3}  {title}" for topic, title in claims.topics.items()),
        f"report schema: {SCHEMA}",
        f"pytest {pytest.__version__}, Python {platform.python_version()} ({sys.executable})",
    ])


def _looks_like_a_command(word: str) -> bool:
    """A bare word that names no file or directory is a mistyped command, not a pytest path."""
    return bool(re.fullmatch(r"[a-z][a-z-]*", word)) and not Path(word).exists()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(argv)
    except BrokenPipeError:  # `docker-net-conformance list | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush cannot fail again
        return 1


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    if {"-h", "--help"} & set(argv):
        print(usage())
        return 0
    if {"-V", "--version"} & set(argv):
        print(version())
        return 0
    if argv and _looks_like_a_command(argv[0]):
        print(f"{PROG}: no command {argv[0]!r}; the commands are {', '.join(COMMANDS)} ({PROG} --help)",
              file=sys.stderr)
        return 4
    return COMMANDS["run"](argv)
