"""``docker-net-conformance update-expectations``: write or update an expectations file from a run's failures."""

from __future__ import annotations

import argparse
from pathlib import Path

from .report_inputs import report_tool, reports_of


@report_tool
def main(argv: list[str], parser: argparse.ArgumentParser) -> int:
    from ..catalog import catalog
    from ..plugin import expectations

    parser.add_argument("report", type=Path)
    parser.add_argument("--out", type=Path, default=Path("expectations.yaml"))
    args = parser.parse_args(argv)
    ((_, report),) = reports_of([args.report])
    existing = expectations.load(args.out, catalog().claims) if args.out.is_file() else None
    text, added, removed = expectations.updated(report, existing)
    args.out.write_text(text, encoding="utf-8")
    print(f"{args.out}: {len(added)} added, {len(removed)} removed")
    for claim_id in added:
        print(f"  + {claim_id}")
    for claim_id in removed:
        print(f"  - {claim_id}")
    return 0
