"""What the report tools (diff, merge, update-expectations) share: reading their input reports, and one line
and exit status 2 for an input that is not one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def report_tool(command):
    """A report tool: a bad input file is one line on stderr and exit 2, not a traceback."""
    def run(argv: list[str], parser: argparse.ArgumentParser) -> int:
        from ..plugin.expectations import ExpectationsError
        from ..reports.schema import ReportError

        try:
            return command(argv, parser)
        except (ReportError, ExpectationsError) as exc:
            print(f"conformance: {exc}", file=sys.stderr)
            return 2
    return run


def reports_of(paths: list[Path]) -> list[tuple[Path, dict]]:
    from ..reports.schema import load

    return [(path, load(path)) for path in paths]
