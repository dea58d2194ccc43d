"""``docker-net-conformance merge``: one claims x hosts matrix (matrix.md, matrix.html) from many report.json."""

from __future__ import annotations

import argparse
from pathlib import Path

from .report_inputs import report_tool, reports_of


@report_tool
def main(argv: list[str], parser: argparse.ArgumentParser) -> int:
    from ..reports import matrix

    parser.add_argument("reports", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=Path("reports/matrix"), help="where matrix.md and matrix.html go")
    args = parser.parse_args(argv)
    columns = matrix.hosts(reports_of(args.reports))
    matrix.write(columns, args.out)
    print(f"{len(columns)} hosts: {args.out}/matrix.md, {args.out}/matrix.html")
    return 0
