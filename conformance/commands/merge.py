"""``docker-net-conformance merge``: one claims x hosts matrix (matrix.md, matrix.html) from many report.json."""

from __future__ import annotations

import argparse
from pathlib import Path

from .report_inputs import report_tool, reports_of


@report_tool
def main(argv: list[str], parser: argparse.ArgumentParser) -> int:
    from ..reports.matrix import hosts, markdown, page

    parser.add_argument("reports", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=Path("reports/matrix"), help="where matrix.md and matrix.html go")
    args = parser.parse_args(argv)
    columns = hosts(reports_of(args.reports))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "matrix.md").write_text(markdown(columns), encoding="utf-8")
    (args.out / "matrix.html").write_text(page(columns, args.out.resolve()), encoding="utf-8")
    print(f"{len(columns)} hosts: {args.out}/matrix.md, {args.out}/matrix.html")
    return 0
