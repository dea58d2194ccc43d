"""``docker-net-conformance diff``: compare two report.json claim by claim (Markdown); exit 1 on a regression."""

from __future__ import annotations

import argparse
from pathlib import Path

from .report_inputs import report_tool, reports_of


@report_tool
def main(argv: list[str], parser: argparse.ArgumentParser) -> int:
    from ..reports.diff import diff, render

    parser.add_argument("base", type=Path)
    parser.add_argument("head", type=Path)
    args = parser.parse_args(argv)
    (_, base), (_, head) = reports_of([args.base, args.head])
    result = diff(base, head)
    print(render(result, str(args.base), str(args.head)))
    return 1 if result.has_regressions else 0
