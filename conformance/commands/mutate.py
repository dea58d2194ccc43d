"""``python -m conformance mutate``: show that every check can fail, and that unusual healthy hosts pass.

The suite runs, as a user would start it, against private engines:

1. healthy: every claim must pass (or be an expected failure or not applicable);
2. under each fault of the catalog's map (``faults:`` in a claim), with only the
   claims mapped to it: each of those checks must fail — the fault is *caught*;
3. on each unusual but healthy configuration, with every claim: nothing may fail,
   except a claim the configuration itself expects to fail on this engine (``expected``,
   with its reason and the engines it applies to), which the run is given as an
   expectations file: reported xfailed with that reason, and failed if it passes.

The mutation score is faults caught / faults applied; ``checks`` says, claim by
claim, which faults killed its check and which it missed.  ``report.json`` is the
healthy run's report with a ``mutation`` section added; ``summary.md`` shows the
score and names every fault a check missed.  Each run's own reports stay in
``healthy/``, ``faults/<name>/`` and ``configurations/<name>/``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from ..catalog import Catalog, catalog
from ..lab.faults import BY_NAME, FAULTS, UNUSUAL
from ..lab.faults.fault import Fault
from ..reports import report_json, summary
from ..reports.files import checked_dir, write_atomic
from .runner import EngineOptions, RunFailed, run_suite


def unexplained(report: dict[str, Any]) -> dict[str, str]:
    """Claims whose outcome a healthy host does not explain, as {id: "status: message"}.

    Explained are: a pass, an expected failure (a documented inaccuracy, or a
    known deviation from an expectations file), and a skip whose reason is a fact
    the claim's ``applies`` names (a documented default this engine does not use).
    """
    def explained(claim: dict) -> bool:
        return (claim["status"] == "passed"
                or (claim["status"] == "xfailed" and (claim["inaccuracy"] is not None or claim.get("expectation")))
                or (claim["status"] == "skipped" and bool(claim["applies"])
                    and claim["message"].startswith("not applicable")))
    return {c["id"]: f"{c['status']}: {c['message']}" for c in report["claims"] if not explained(c)}


def fault_map(cat: Catalog) -> dict[str, list[str]]:
    """{fault: the claims whose checks must fail under it}, in the order of the registry (lab/faults/)."""
    mapped: dict[str, list[str]] = defaultdict(list)
    for claim in cat:
        for fault in claim.faults:
            mapped[fault].append(claim.id)
    return {fault.name: mapped[fault.name] for fault in FAULTS if mapped[fault.name]}


def expectations_file(configuration: Fault, directory: Path) -> Path | None:
    """The expectations file that tells a run of *configuration* which claims it rightly fails, and why."""
    if not configuration.expected:
        return None
    path = checked_dir(directory) / f"expected-{configuration.name}.yaml"
    write_atomic(path, yaml.safe_dump({
        "when": dict(configuration.expected_when),
        "expected": {cid: {"status": "failed", "reason": f"{configuration.name}: {why}"}
                     for cid, why in configuration.expected.items()},
    }, sort_keys=False, allow_unicode=True))
    return path


def per_check(cat: Catalog, faults: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{claim: {"killed_by": [...], "missed_by": [...], "not_applicable_under": [...]}} for every claim of the
    catalog (the last: faults mapped to it whose run found the claim not applicable to this engine, e.g. the
    other side of a version change); a claim no fault reaches carries its ``no_fault`` reason instead."""
    checks: dict[str, dict[str, Any]] = {}
    for claim in cat:
        entry: dict[str, Any] = {"killed_by": [], "missed_by": [], "not_applicable_under": []}
        for name, fault in faults.items():
            if claim.id in fault["inapplicable"]:
                entry["not_applicable_under"].append(name)
            elif claim.id in fault["claims"]:
                entry["killed_by" if fault["claims"][claim.id]["status"] == "failed" else "missed_by"].append(name)
        if claim.no_fault:
            entry["no_fault"] = claim.no_fault
        checks[claim.id] = entry
    return checks


def _progress(text: str) -> None:
    print(f"mutate: {text}", file=sys.stderr, flush=True)


def mutate(report_dir: Path, only: set[str] | None = None, dockerd: str | None = None) -> dict[str, Any]:
    """Run the healthy engine, the fault map and the unusual configurations; the healthy report with
    ``mutation`` added.  *only* limits the faults and configurations to those names; *dockerd* is the build
    every private engine starts from (``--dockerd``; default: the ``dockerd`` on PATH)."""
    cat = catalog()
    started = time.monotonic()
    healthy = run_suite(report_dir / "healthy", engine=EngineOptions("private", dockerd)).required()
    _progress(f"healthy private engine: {len(unexplained(healthy))} unexplained outcomes")

    faults: dict[str, dict[str, Any]] = {}
    for name, claim_ids in fault_map(cat).items():
        if only and name not in only:
            continue
        report = run_suite(report_dir / "faults" / name, *(f"--claim={c}" for c in claim_ids),
                           engine=EngineOptions(dockerd=dockerd, variant=name)).required()
        seen = {c["id"]: c for c in report["claims"]}
        outcomes = {cid: {"status": seen[cid]["status"] if cid in seen else "not run",
                          "message": seen[cid]["message"] if cid in seen else ""} for cid in claim_ids}
        caught = sum(o["status"] == "failed" for o in outcomes.values())
        # A claim this engine does not have (another version's side of a change) cannot show the fault here.
        inapplicable = sorted(cid for cid, o in outcomes.items() if o["status"] == "skipped"
                              and o["message"].startswith("not applicable") and seen[cid]["applies"])
        applied = len(claim_ids) - len(inapplicable)
        faults[name] = {"why": BY_NAME[name].why, "caught": caught, "applied": applied,
                        "inapplicable": inapplicable, "claims": outcomes}
        _progress(f"fault {name}: {caught}/{applied} caught" + (f", {len(inapplicable)} not applicable on this "
                                                                 "engine" if inapplicable else ""))

    configurations: dict[str, dict[str, Any]] = {}
    for configuration in UNUSUAL:
        if only and configuration.name not in only:
            continue
        directory = report_dir / "configurations" / configuration.name
        known = expectations_file(configuration, report_dir / "expectations")
        report = run_suite(directory, *(("--expectations", str(known)) if known else ()),
                           engine=EngineOptions(dockerd=dockerd, variant=configuration.name)).required()
        wrong = unexplained(report)
        expected = {c["id"]: f"{c['status']}: {c['expectation']}" for c in report["claims"] if c.get("expectation")}
        configurations[configuration.name] = {"why": configuration.why, "totals": report["totals"],
                                              "unexplained": wrong, "expected": expected}
        _progress(f"configuration {configuration.name}: {len(wrong)} unexplained outcomes")

    applied = sum(f["applied"] for f in faults.values())
    caught = sum(f["caught"] for f in faults.values())
    missed = [f"{cid} missed fault {name}: {o['status']}{' — ' + o['message'] if o['message'] else ''}"
              for name, fault in faults.items() for cid, o in fault["claims"].items()
              if o["status"] != "failed" and cid not in fault["inapplicable"]]
    healthy["mutation"] = {
        "score": round(caught / applied, 4) if applied else None,
        "caught": caught,
        "applied": applied,
        "missed": missed,
        "healthy_unexplained": unexplained(healthy),
        "faults": faults,
        "checks": {cid: c for cid, c in per_check(cat, faults).items()
                   if not only or c["killed_by"] or c["missed_by"] or c["not_applicable_under"]},
        "configurations": configurations,
        "no_fault": {claim.id: claim.no_fault for claim in cat if claim.no_fault},
        "duration": round(time.monotonic() - started, 1),
    }
    report_json.write(healthy, report_dir / "report.json")
    summary.write(healthy, report_dir / "summary.md")
    return healthy


def succeeded(report: dict[str, Any]) -> bool:
    """Every mapped fault caught, and no unexplained outcome on the healthy or the unusual engines."""
    mutation = report["mutation"]
    return (not mutation["missed"] and not mutation["healthy_unexplained"]
            and not any(c["unexplained"] for c in mutation["configurations"].values()))


def main(argv: list[str], parser: argparse.ArgumentParser) -> int:

    parser.add_argument("--report-dir", type=Path, default=Path("reports/mutation"))
    parser.add_argument("--only", nargs="+", choices=sorted(BY_NAME), metavar="NAME",
                        help="only these faults and configurations (the healthy run always happens)")
    parser.add_argument("--dockerd", type=Path, metavar="PATH",
                        help="start every private engine from this dockerd build, as `run --dockerd` does "
                             "(default: the dockerd on PATH)")
    args = parser.parse_args(argv)
    if args.dockerd and not (args.dockerd.is_file() and os.access(args.dockerd, os.X_OK)):
        print(f"conformance mutate: --dockerd {args.dockerd}: not an executable file", file=sys.stderr)
        return 4
    try:
        report = mutate(args.report_dir.resolve(), set(args.only or ()),
                        str(args.dockerd.resolve()) if args.dockerd else None)
    except RunFailed as exc:
        print(f"conformance mutate: {exc}", file=sys.stderr)
        return 3
    mutation = report["mutation"]
    print(f"mutation score {mutation['caught']}/{mutation['applied']}; reports in {args.report_dir}/")
    for line in mutation["missed"]:
        print(f"  MISSED {line}")
    return 0 if succeeded(report) else 1
