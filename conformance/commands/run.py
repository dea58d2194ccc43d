"""``docker-net-conformance run`` (and no command at all): pytest on the suite's checks, with its plugin.

Every other command that runs checks in this process (``list``) goes through ``pytest_session`` too; the
commands that run the suite as a user would, in a subprocess, go through conformance/commands/runner.py.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

# Not imported from the plugin: pytest must be the first to import the plugin so it can rewrite its asserts.
CHECKS_DIR = Path(__file__).parents[1] / "checks"
# Node ids are `conformance/checks/test_x.py::…` whether the package is a checkout or installed.
ROOT_DIR = CHECKS_DIR.parent.parent
# `python -m conformance` imports this package before pytest can rewrite it; that is expected.
_ALREADY_IMPORTED = "ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning"


def pytest_session(argv: list[str], plugins: Sequence[object] = ()) -> int:
    """pytest on the suite's checks with the suite's plugin loaded (it is loaded nowhere else).

    The session reads no ini file (``-c`` the null device): its whole configuration is the plugin and these
    arguments, so neither the project's own test configuration nor that of a project the suite is installed
    in (a pyproject.toml above its virtual environment) can change how the checks run."""
    return int(pytest.main([str(CHECKS_DIR), "-c", os.devnull, "--rootdir", str(ROOT_DIR),
                            "--confcutdir", str(CHECKS_DIR.parent),
                            "-p", "conformance.plugin", "-p", "no:cacheprovider", "-W", _ALREADY_IMPORTED, *argv],
                           plugins=list(plugins)))


class _Prog:
    """Names pytest's usage line after the command that called it, not after ``__main__.py``."""

    def __init__(self, prog: str):
        self.prog = prog

    def pytest_addoption(self, parser: pytest.Parser) -> None:
        parser.prog = self.prog


def main(argv: list[str], parser: argparse.ArgumentParser) -> int:
    return pytest_session(argv, [_Prog(parser.prog)])
