"""``docker-net-conformance update-expectations``: write or update an expectations file from a run's failures."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .report_inputs import report_tool, reports_of


@report_tool
def main(argv: list[str], parser: argparse.ArgumentParser) -> int:
    from ..catalog import catalog
    from ..plugin import expectations
    from ..reports.files import WriteError, checked_dir, write_atomic

    parser.add_argument("report", type=Path)
    parser.add_argument("--out", type=Path, default=Path("expectations.yaml"))
    args = parser.parse_args(argv)
    ((_, report),) = reports_of([args.report])
    checked_dir(args.out.parent)
    # The file it replaces is read first, for its reasons: never through a link (to whose file?) nor a directory.
    if args.out.is_symlink():
        raise WriteError(f"{args.out}: a symbolic link: refusing to read or replace it (give the file it points to)")
    if os.path.lexists(args.out) and not args.out.is_file():
        raise WriteError(f"{args.out}: not a regular file")
    existing = expectations.load(args.out, catalog().claims) if args.out.is_file() else None
    text, added, removed = expectations.updated(report, existing)
    write_atomic(args.out, text)
    print(f"{args.out}: {len(added)} added, {len(removed)} removed")
    for claim_id in added:
        print(f"  + {claim_id}")
    for claim_id in removed:
        print(f"  - {claim_id}")
    return 0
