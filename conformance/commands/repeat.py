"""``python -m conformance repeat N [--report-dir DIR] [pytest args]``: N runs back to back, for flakes.

Each run is the suite as a user starts it, into DIR/run-NN/.  After each, what
the run left (lab/safety/sweep.py's ``leftovers``) is listed; at the end, every claim
whose outcome was not the same in all runs.  repeat.json holds both.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..lab.safety.sweep import leftovers, system_client
from ..reports.files import checked_dir, write_atomic
from .runner import run_suite


def repeat(times: int, report_dir: Path, pytest_args: list[str]) -> dict[str, Any]:
    outcomes: dict[str, list[str]] = defaultdict(list)
    runs: list[dict[str, Any]] = []
    client = system_client()
    try:
        for index in range(1, times + 1):
            run = run_suite(report_dir / f"run-{index:02d}", *pytest_args)
            wall = round(run.wall_s, 1)
            if run.report is None:
                runs.append({"run": index, "exit": run.exit, "wall_s": wall, "report": None, "left": [],
                             "error": run.tail(2000)})
                continue
            for claim in run.report["claims"]:
                outcomes[claim["id"]].append(claim["status"])
            left = [line for run_id in run.report["run_info"].get("run_ids", []) for line in leftovers(run_id, client)]
            runs.append({"run": index, "exit": run.exit, "wall_s": wall, "report": str(run.report_dir / "report.json"),
                         "totals": run.report["totals"], "left": left})
            print(f"run {index}/{times}: exit {run.exit}, {wall} s, {run.report['totals']}"
                  + (f", LEFT {left}" if left else ""), flush=True)
    finally:
        if client is not None:
            client.close()
    changed = {claim: statuses for claim, statuses in sorted(outcomes.items()) if len(set(statuses)) > 1}
    result = {"times": times, "pytest_args": pytest_args, "runs": runs, "changed": changed,
              "leftovers": sum(len(r["left"]) for r in runs),
              "missing_reports": [r["run"] for r in runs if r["report"] is None]}
    write_atomic(report_dir / "repeat.json", json.dumps(result, indent=2) + "\n")
    return result


def stable(result: dict[str, Any]) -> bool:
    return not result["changed"] and not result["leftovers"] and not result["missing_reports"]


def main(argv: list[str], parser: argparse.ArgumentParser) -> int:

    parser.add_argument("times", type=int)
    parser.add_argument("--report-dir", type=Path, default=Path("reports/repeat"))
    args, pytest_args = parser.parse_known_args(argv)
    checked_dir(args.report_dir)
    result = repeat(args.times, args.report_dir.resolve(), pytest_args)
    for claim, statuses in result["changed"].items():
        print(f"CHANGED {claim}: {' '.join(statuses)}")
    for run in result["runs"]:
        for line in run["left"]:
            print(f"LEFT by run {run['run']}: {line}")
    print(f"{result['times']} runs: {len(result['changed'])} claims changed outcome, {result['leftovers']} objects "
          f"left, {len(result['missing_reports'])} runs without a report; {args.report_dir}/repeat.json")
    return 0 if stable(result) else 1
