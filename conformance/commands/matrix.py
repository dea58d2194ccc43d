"""``docker-net-conformance matrix [--engine ENGINE ...] [--out DIR] [pytest args]``: the catalog on several engines.

Each ENGINE is run as a user would run the suite against it, one after the
other, into ``DIR/<name>/`` (a normal report that ``diff`` compares), and the
reports are merged into one claims × engines matrix (``DIR/matrix.md``,
``DIR/matrix.html``), the claims whose outcome differs first, with why.

An ENGINE is one of:

- ``system``: the engine at DOCKER_HOST (``--engine system``);
- ``private``: a private engine from the ``dockerd`` on PATH;
- ``trixie``, ``sid``: that Debian suite's docker.io, fetched and unpacked first
  (conformance/lab/engines/builds.py), as a private engine;
- ``podman``: a private ``podman system service``;
- a path to a ``dockerd``, as a private engine (``--dockerd PATH``);
- ``unix:///…sock``: whatever engine answers there (a Podman socket, another dockerd).

The default is the four engines this project proves: ``private trixie sid podman``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import FIXTURES
from ..reports.files import checked_dir, write_atomic
from ..reports.matrix import differing, hosts, write
from .runner import EngineOptions, RunFailed, run_suite

DEFAULT = ("private", "trixie", "sid", "podman")
NAMED = ("system", "private", "podman")  # and the suites of conformance/lab/engines/builds.py
# Podman's known deviations from the articles: its run reports them xfailed with the reason.
PODMAN_EXPECTATIONS = FIXTURES / "expectations" / "podman.yaml"


@dataclass
class EngineRun:
    spec: str
    name: str
    engine: EngineOptions
    args: list[str] = field(default_factory=list)  # the suite's arguments besides the engine's
    seconds: float = 0.0
    totals: dict[str, int] = field(default_factory=dict)

    @property
    def suite_args(self) -> list[str]:
        return [*self.engine.args(), *self.args]


def resolve(spec: str) -> tuple[str, EngineOptions, list[str]]:
    """(directory name, engine, other suite arguments) for one ENGINE spec."""
    from ..lab.engines import builds  # the lab takes a while to import; --help needs none of it

    if spec == "podman":
        return spec, EngineOptions(spec), ["--expectations", str(PODMAN_EXPECTATIONS)]
    if spec in NAMED:
        return spec, EngineOptions(spec), []
    if spec in builds.SUITES:
        return spec, EngineOptions(dockerd=str(builds.fetch(spec).dockerd)), []
    if spec.startswith("unix://"):
        name = re.sub(r"[^A-Za-z0-9]+", "-", spec[len("unix://"):]).strip("-")
        return name, EngineOptions("system", docker_host=spec), []
    path = Path(spec)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ValueError(f"{spec}: not an engine name ({', '.join((*NAMED, *builds.SUITES))}), "
                         "an executable dockerd, or a unix:// socket")
    parts = path.resolve().parts
    # …/<suite>/tree/usr/sbin/dockerd names itself by <suite>; any other binary by its directory.
    name = parts[-5] if len(parts) >= 5 and parts[-4:-1] == ("tree", "usr", "sbin") else path.resolve().parent.name
    return f"dockerd-{name}", EngineOptions(dockerd=str(path.resolve())), []


def plan(specs: list[str]) -> list[EngineRun]:
    runs: list[EngineRun] = []
    for spec in specs:
        name, engine, args = resolve(spec)
        taken = {run.name for run in runs}
        unique, n = name, 2
        while unique in taken:
            unique, n = f"{name}-{n}", n + 1
        runs.append(EngineRun(spec, unique, engine, args))
    return runs


def matrix(specs: list[str], out: Path, pytest_args: list[str]) -> dict:
    """Run the suite on each engine, merge the reports; the figures written to ``out/matrix.json``."""
    checked_dir(out)
    started = time.monotonic()
    runs = plan(specs)
    fetched = time.monotonic() - started
    for run in runs:
        began = time.monotonic()
        report = run_suite(out / run.name, *run.args, *pytest_args, engine=run.engine).required()
        run.seconds = round(time.monotonic() - began, 1)
        run.totals = report["totals"]
        print(f"matrix: {run.name}: {run.seconds} s, {_totals(run.totals)}", flush=True)
    columns = hosts([(out / run.name / "report.json", json.loads((out / run.name / "report.json").read_text()))
                     for run in runs])
    write(columns, out)
    result = {
        "engines": [{"spec": r.spec, "name": r.name, "args": r.suite_args, "seconds": r.seconds, "totals": r.totals,
                     "label": column.label} for r, column in zip(runs, columns, strict=True)],
        "differing": differing(columns),
        "fetch_seconds": round(fetched, 1),
        "seconds": round(time.monotonic() - started, 1),
    }
    write_atomic(out / "matrix.json", json.dumps(result, indent=1) + "\n")
    return result


def _totals(totals: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in totals.items() if n)


def main(argv: list[str], parser: argparse.ArgumentParser) -> int:
    """The ``matrix`` command (conformance/cli.py's COMMANDS)."""
    from ..lab.engines import builds

    parser.add_argument("--engine", dest="engines", action="append", metavar="ENGINE",
                        help=f"repeatable: system, private, podman, {', '.join(builds.SUITES)}, a dockerd path or a "
                             f"unix:// socket (default: {' '.join(DEFAULT)})")
    parser.add_argument("--out", type=Path, default=Path("reports/engines"),
                        help="where each engine's report directory, matrix.md, matrix.html and matrix.json go")
    args, pytest_args = parser.parse_known_args(argv)
    try:
        result = matrix(list(args.engines or DEFAULT), args.out.resolve(), pytest_args)
    except (ValueError, builds.FetchFailed) as exc:
        print(f"conformance matrix: {exc}", file=sys.stderr)
        return 4
    except RunFailed as exc:
        print(f"conformance matrix: {exc}", file=sys.stderr)
        return 3
    print(f"{len(result['engines'])} engines in {result['seconds']} s (fetching {result['fetch_seconds']} s); "
          f"{len(result['differing'])} claims differ; {args.out}/matrix.md, {args.out}/matrix.html")
    failed = any(e["totals"].get("failed") or e["totals"].get("error") or e["totals"].get("xpassed")
                 for e in result["engines"])
    return 1 if failed else 0
