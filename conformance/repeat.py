"""``python -m conformance repeat N [--report-dir DIR] [pytest args]``: N runs back to back, for flakes.

Each run is the suite as a user starts it, into DIR/run-NN/.  After each, what
the run left (lab/sweep.py's ``leftovers``) is listed; at the end, every claim
whose outcome was not the same in all runs.  repeat.json holds both.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from .lab.sweep import leftovers, system_client


def repeat(times: int, report_dir: Path, pytest_args: list[str]) -> dict[str, Any]:
    outcomes: dict[str, list[str]] = defaultdict(list)
    runs: list[dict[str, Any]] = []
    client = system_client()
    try:
        for index in range(1, times + 1):
            run_dir = report_dir / f"run-{index:02d}"
            start = time.perf_counter()
            completed = subprocess.run([sys.executable, "-m", "conformance", "--report-dir", str(run_dir), "-q",
                                        *pytest_args], capture_output=True, text=True)
            wall = round(time.perf_counter() - start, 1)
            report_path = run_dir / "report.json"
            if not report_path.is_file():
                runs.append({"run": index, "exit": completed.returncode, "wall_s": wall, "report": None,
                             "left": [], "error": completed.stderr[-2000:]})
                continue
            report = json.loads(report_path.read_text())
            for claim in report["claims"]:
                outcomes[claim["id"]].append(claim["status"])
            left = [line for run_id in report["run_info"].get("run_ids", []) for line in leftovers(run_id, client)]
            runs.append({"run": index, "exit": completed.returncode, "wall_s": wall, "report": str(report_path),
                         "totals": report["totals"], "left": left})
            print(f"run {index}/{times}: exit {completed.returncode}, {wall} s, {report['totals']}"
                  + (f", LEFT {left}" if left else ""), flush=True)
    finally:
        if client is not None:
            client.close()
    changed = {claim: statuses for claim, statuses in sorted(outcomes.items()) if len(set(statuses)) > 1}
    result = {"times": times, "pytest_args": pytest_args, "runs": runs, "changed": changed,
              "leftovers": sum(len(r["left"]) for r in runs),
              "missing_reports": [r["run"] for r in runs if r["report"] is None]}
    (report_dir / "repeat.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def stable(result: dict[str, Any]) -> bool:
    return not result["changed"] and not result["leftovers"] and not result["missing_reports"]
