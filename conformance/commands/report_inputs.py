"""What the report tools (diff, merge, update-expectations) share: reading their input reports, and one line
and exit status 2 for an input that is not one, or an output that cannot be written safely (never 1, which is
diff's word for a regression)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def report_tool(command):
    """A report tool: a bad input file, or an output refused (conformance/reports/files.py), is one line on
    stderr and exit 2, not a traceback."""
    def run(argv: list[str], parser: argparse.ArgumentParser) -> int:
        from ..plugin.expectations import ExpectationsError
        from ..reports.files import WriteError
        from ..reports.schema import ReportError

        try:
            return command(argv, parser)
        except (ReportError, ExpectationsError, WriteError) as exc:
            print(f"conformance: {' '.join(str(exc).split())}", file=sys.stderr)  # one line, whatever it quotes
            return 2
    return run


def reports_of(paths: list[Path]) -> list[tuple[Path, dict]]:
    from ..reports.schema import load

    return [(path, load(path)) for path in paths]
