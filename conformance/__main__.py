"""``python -m conformance [--report-dir DIR] [pytest args]``: run the checks, write the reports.
``python -m conformance cleanup``: remove what runs that died (killed, crashed) left behind.
``python -m conformance mutate [--report-dir DIR] [--only NAME ...]``: run the fault map and the unusual
configurations against private engines (conformance/mutation.py).
``python -m conformance benchmark [--out DIR]``: the suite's wall time, serial and with -n 2, against the engine's
floor (conformance/benchmark.py).
``python -m conformance repeat N [--report-dir DIR] [pytest args]``: N runs back to back; claims whose outcome
changed, and anything a run left behind (conformance/repeat.py).
``python -m conformance diff BASE.json HEAD.json``: what changed between two runs, in Markdown; exit 1 on a regression.
``python -m conformance merge REPORT.json ... [--out DIR]``: the claims × hosts matrix, matrix.md and matrix.html.
``python -m conformance update-expectations REPORT.json [--out FILE]``: record a run's failures as known deviations.

The report tools need neither root nor an engine.

Exit status of a run is pytest's: 0 only when no claim failed unexpectedly and nothing errored.  A problem
with the environment (not root, no engine, no iptables, a kernel without veth) is one line at the end of the
run; the checks it affects error with that line, and the report is written all the same.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pytest

# Not imported from .plugin: pytest must be the first to import the plugin so it can rewrite its asserts.
CHECKS_DIR = Path(__file__).parent / "checks"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] and argv[0] in REPORT_TOOLS:
        return REPORT_TOOLS[argv[0]](argv[1:])
    if argv[:1] and argv[0] in ROOT_TOOLS:
        if os.geteuid() != 0:
            print(f"conformance {argv[0]}: not root: it creates and removes network namespaces and engines "
                  f"— run it as root (sudo python -m conformance {argv[0]})", file=sys.stderr)
            return 4
        return ROOT_TOOLS[argv[0]](argv[1:])
    # `python -m conformance` imports this package before pytest can rewrite it; that is expected.
    quiet = "ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning"
    return int(pytest.main([str(CHECKS_DIR), "-p", "no:cacheprovider", "-W", quiet, *argv]))


def cleanup(argv: list[str]) -> int:
    from .lab.sweep import sweep_dead_runs

    argparse.ArgumentParser(prog="python -m conformance cleanup",
                            description="Remove what runs that died left behind; live runs are never touched."
                            ).parse_args(argv)
    swept = sweep_dead_runs()
    for run_id, removed in swept.items():
        print(f"run {run_id} (dead): {'removed' if removed else 'nothing was left'}")
        for line in removed:
            print(f"  {line}")
    if not swept:
        print("no dead runs: nothing to remove (live runs are never touched)")
    return 0


def mutate(argv: list[str]) -> int:
    from .lab.variants import VARIANTS
    from .mutation import RunFailed, mutate, succeeded

    parser = argparse.ArgumentParser(prog="python -m conformance mutate",
                                     description="Run the catalog's fault map and the unusual configurations.")
    parser.add_argument("--report-dir", type=Path, default=Path("reports/mutation"))
    parser.add_argument("--only", nargs="+", choices=sorted(VARIANTS), metavar="NAME",
                        help="only these faults and configurations (the healthy run always happens)")
    args = parser.parse_args(argv)
    try:
        report = mutate(args.report_dir.resolve(), set(args.only or ()))
    except RunFailed as exc:
        print(f"conformance mutate: {exc}", file=sys.stderr)
        return 3
    mutation = report["mutation"]
    print(f"mutation score {mutation['caught']}/{mutation['applied']}; reports in {args.report_dir}/")
    for line in mutation["missed"]:
        print(f"  MISSED {line}")
    return 0 if succeeded(report) else 1


def benchmark(argv: list[str]) -> int:
    from .benchmark import benchmark, render

    parser = argparse.ArgumentParser(prog="python -m conformance benchmark",
                                     description="Time the suite, serial and with -n 2, against the engine's floor.")
    parser.add_argument("--out", type=Path, default=Path("reports/benchmark"),
                        help="where benchmark.json and the two runs' reports go")
    args = parser.parse_args(argv)
    result = benchmark(args.out.resolve())
    print(render(result))
    print(f"figures: {args.out}/benchmark.json")
    return 0


def repeat(argv: list[str]) -> int:
    from .repeat import repeat, stable

    parser = argparse.ArgumentParser(prog="python -m conformance repeat",
                                     description="Run the suite N times back to back and report what changed.")
    parser.add_argument("times", type=int)
    parser.add_argument("--report-dir", type=Path, default=Path("reports/repeat"))
    args, pytest_args = parser.parse_known_args(argv)
    args.report_dir.mkdir(parents=True, exist_ok=True)
    result = repeat(args.times, args.report_dir.resolve(), pytest_args)
    for claim, statuses in result["changed"].items():
        print(f"CHANGED {claim}: {' '.join(statuses)}")
    for run in result["runs"]:
        for line in run["left"]:
            print(f"LEFT by run {run['run']}: {line}")
    print(f"{result['times']} runs: {len(result['changed'])} claims changed outcome, {result['leftovers']} objects "
          f"left, {len(result['missing_reports'])} runs without a report; {args.report_dir}/repeat.json")
    return 0 if stable(result) else 1


def _reports(paths: list[Path]) -> list[tuple[Path, dict]]:
    from .reports.schema import load

    return [(path, load(path)) for path in paths]


def diff(argv: list[str]) -> int:
    from .reports.diff import diff, render

    parser = argparse.ArgumentParser(prog="python -m conformance diff",
                                     description="Compare two report.json files claim by claim.")
    parser.add_argument("base", type=Path)
    parser.add_argument("head", type=Path)
    args = parser.parse_args(argv)
    (_, base), (_, head) = _reports([args.base, args.head])
    result = diff(base, head)
    print(render(result, str(args.base), str(args.head)))
    return 1 if result.has_regressions else 0


def merge(argv: list[str]) -> int:
    from .reports.matrix import hosts, markdown, page

    parser = argparse.ArgumentParser(prog="python -m conformance merge",
                                     description="One matrix of claims x hosts from many report.json files.")
    parser.add_argument("reports", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=Path("reports/matrix"), help="where matrix.md and matrix.html go")
    args = parser.parse_args(argv)
    columns = hosts(_reports(args.reports))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "matrix.md").write_text(markdown(columns), encoding="utf-8")
    (args.out / "matrix.html").write_text(page(columns, args.out.resolve()), encoding="utf-8")
    print(f"{len(columns)} hosts: {args.out}/matrix.md, {args.out}/matrix.html")
    return 0


def update_expectations(argv: list[str]) -> int:
    from . import expectations
    from .catalog import catalog

    parser = argparse.ArgumentParser(prog="python -m conformance update-expectations",
                                     description="Write or update an expectations file from a run's failures.")
    parser.add_argument("report", type=Path)
    parser.add_argument("--out", type=Path, default=Path("expectations.yaml"))
    args = parser.parse_args(argv)
    ((_, report),) = _reports([args.report])
    existing = expectations.load(args.out, catalog().claims) if args.out.is_file() else None
    text, added, removed = expectations.updated(report, existing)
    args.out.write_text(text, encoding="utf-8")
    print(f"{args.out}: {len(added)} added, {len(removed)} removed")
    for claim_id in added:
        print(f"  + {claim_id}")
    for claim_id in removed:
        print(f"  - {claim_id}")
    return 0


def _report_tool(command):
    """Run a report tool; a bad input file is one line on stderr and exit 2, not a traceback."""
    def run(argv: list[str]) -> int:
        from .expectations import ExpectationsError
        from .reports.schema import ReportError

        try:
            return command(argv)
        except (ReportError, ExpectationsError) as exc:
            print(f"conformance: {exc}", file=sys.stderr)
            return 2
    return run


def matrix(argv: list[str]) -> int:
    from .engine_matrix import main as engine_matrix  # the catalog on several engines, one matrix

    return engine_matrix(argv)


ROOT_TOOLS = {"cleanup": cleanup, "mutate": mutate, "benchmark": benchmark, "repeat": repeat, "matrix": matrix}
REPORT_TOOLS = {"diff": _report_tool(diff), "merge": _report_tool(merge),
                "update-expectations": _report_tool(update_expectations)}


if __name__ == "__main__":
    sys.exit(main())
