"""The subcommands of ``docker-net-conformance``, one function each: ``(argv, parser) -> exit status``.

*parser* comes from the command's entry in ``cli.COMMANDS`` (its name and one-line summary); a command adds
its own arguments to it.  Each imports what it needs when it runs, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

# Not imported from .plugin: pytest must be the first to import the plugin so it can rewrite its asserts.
CHECKS_DIR = Path(__file__).parent / "checks"
# `python -m conformance` imports this package before pytest can rewrite it; that is expected.
_ALREADY_IMPORTED = "ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning"


def pytest_session(argv: list[str], plugins: Sequence[object] = ()) -> int:
    """pytest on the suite's checks with the suite's plugin loaded (it is loaded nowhere else)."""
    return int(pytest.main([str(CHECKS_DIR), "-p", "conformance.plugin", "-p", "no:cacheprovider",
                            "-W", _ALREADY_IMPORTED, *argv], plugins=list(plugins)))


class _Prog:
    """Names pytest's usage line after the command that called it, not after ``__main__.py``."""

    def __init__(self, prog: str):
        self.prog = prog

    def pytest_addoption(self, parser: pytest.Parser) -> None:
        parser.prog = self.prog


def run(argv: list[str], parser: argparse.ArgumentParser) -> int:
    return pytest_session(argv, [_Prog(parser.prog)])


def cleanup(argv: list[str], parser: argparse.ArgumentParser) -> int:
    from .lab.sweep import sweep_dead_runs

    parser.parse_args(argv)
    swept = sweep_dead_runs()
    for run_id, removed in swept.items():
        print(f"run {run_id} (dead): {'removed' if removed else 'nothing was left'}")
        for line in removed:
            print(f"  {line}")
    if not swept:
        print("no dead runs: nothing to remove (live runs are never touched)")
    return 0


def mutate(argv: list[str], parser: argparse.ArgumentParser) -> int:
    from .lab.variants import VARIANTS
    from .mutation import RunFailed, mutate, succeeded

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


def benchmark(argv: list[str], parser: argparse.ArgumentParser) -> int:
    from .benchmark import benchmark, render

    parser.add_argument("--out", type=Path, default=Path("reports/benchmark"),
                        help="where benchmark.json and the two runs' reports go")
    args = parser.parse_args(argv)
    result = benchmark(args.out.resolve())
    print(render(result))
    print(f"figures: {args.out}/benchmark.json")
    return 0


def repeat(argv: list[str], parser: argparse.ArgumentParser) -> int:
    from .repeat import repeat, stable

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


def report_tool(command):
    """A report tool: a bad input file is one line on stderr and exit 2, not a traceback."""
    def run(argv: list[str], parser: argparse.ArgumentParser) -> int:
        from .expectations import ExpectationsError
        from .reports.schema import ReportError

        try:
            return command(argv, parser)
        except (ReportError, ExpectationsError) as exc:
            print(f"conformance: {exc}", file=sys.stderr)
            return 2
    return run


def _reports(paths: list[Path]) -> list[tuple[Path, dict]]:
    from .reports.schema import load

    return [(path, load(path)) for path in paths]


@report_tool
def diff(argv: list[str], parser: argparse.ArgumentParser) -> int:
    from .reports.diff import diff, render

    parser.add_argument("base", type=Path)
    parser.add_argument("head", type=Path)
    args = parser.parse_args(argv)
    (_, base), (_, head) = _reports([args.base, args.head])
    result = diff(base, head)
    print(render(result, str(args.base), str(args.head)))
    return 1 if result.has_regressions else 0


@report_tool
def merge(argv: list[str], parser: argparse.ArgumentParser) -> int:
    from .reports.matrix import hosts, markdown, page

    parser.add_argument("reports", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=Path("reports/matrix"), help="where matrix.md and matrix.html go")
    args = parser.parse_args(argv)
    columns = hosts(_reports(args.reports))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "matrix.md").write_text(markdown(columns), encoding="utf-8")
    (args.out / "matrix.html").write_text(page(columns, args.out.resolve()), encoding="utf-8")
    print(f"{len(columns)} hosts: {args.out}/matrix.md, {args.out}/matrix.html")
    return 0


@report_tool
def update_expectations(argv: list[str], parser: argparse.ArgumentParser) -> int:
    from . import expectations
    from .catalog import catalog

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
