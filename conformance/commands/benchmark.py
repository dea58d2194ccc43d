"""``python -m conformance benchmark``: the suite's wall time against the engine's own floor.

In one run on one machine: calibrate the floor (the median time to create,
start and remove one probe container, and to create and delete a namespace with
a veth), run the full suite serially and with ``-n 2``, and compare.  The
figures go to benchmark.json so that runs on one machine can be compared.

Each run also counts the CPU time the whole machine spent while it ran (the
engines, runc, the kernel and the suite: most of a run's work is not the
suite's process).  That time over the machine's CPUs is a wall time no
scheduling can beat: where a run is close to it, only less work makes it faster.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psutil

from ..lab.engines.engine import Engine, NoEngine, docker_host
from ..lab.engines.private import PrivateEngine
from ..lab.engines.probe import ensure_probe_image
from ..lab.engines.scope import SLEEP
from ..lab.kernel.netns import NamedNetns, Netns
from ..lab.safety.identity import Run
from ..lab.safety.sweep import Liveness
from ..reports.files import checked_dir, write_atomic
from .runner import RunFailed, SuiteRun, run_suite

SAMPLES = 7
# The goals of the speed issue (16), for the 2-core development machine when nothing else loads it.
GOALS = {"parallel_wall_s": 15.0, "wall_per_floor": 1.5, "speedup": 1.5}
PARALLEL = ("-n", "2")
CPUS = len(os.sched_getaffinity(0))


def container_floor(engine: Engine, image: str, run: Run) -> float:
    """Median seconds to create, start and remove one probe container, the way the suite does."""
    times = []
    for index in range(SAMPLES):
        start = time.perf_counter()
        box = engine.client.containers.create(image, SLEEP, name=run.name(f"floor{index}"), labels=run.labels,
                                              init=True)
        try:
            box.start()
            box.reload()
        finally:
            box.remove(force=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def namespace_floor(run: Run) -> float:
    """Median seconds to create a namespace with a veth to it from the suite's own, and delete both."""
    own, times = Netns("/proc/self/ns/net"), []
    for index in range(SAMPLES):
        start = time.perf_counter()
        with NamedNetns(run.name(f"floor{index}")) as netns:
            own.add_veth(run.ifname("fa"), run.ifname("fb"), peer_netns=netns)
            own.delete(run.ifname("fa"))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def busy_cpu_s() -> float:
    """CPU seconds this machine has spent working since boot, on all CPUs (neither idle, nor waiting for I/O,
    nor stolen by a hypervisor)."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq


def timed(report_dir: Path, *args: str) -> tuple[SuiteRun, float]:
    """Run the suite; the run and the machine's CPU seconds spent while it ran."""
    before = busy_cpu_s()
    run = run_suite(report_dir, *args)
    return run, busy_cpu_s() - before


def summarize(run: SuiteRun, cpu_s: float, args: list[str], floor: float) -> dict[str, Any]:
    report = run.required()
    created = report["run_info"].get("created", {})
    containers = created.get("containers", 0)
    slowest = sorted((c for c in report["claims"] if c.get("duration")), key=lambda c: -c["duration"])[:10]
    return {
        "args": args,
        "exit": run.exit,
        "wall_s": run.wall_s,
        "containers": containers,
        "namespaces": created.get("namespaces", 0),
        "wall_per_floor": round(run.wall_s / (containers * floor), 2) if containers else None,
        "cpu_s": round(cpu_s, 1),
        "cpu_bound_wall_s": round(cpu_s / CPUS, 1),
        "totals": report["totals"],
        "slowest": [{"claim": c["id"], "duration_s": round(c["duration"], 2)} for c in slowest],
    }


def benchmark(out_dir: Path) -> dict[str, Any]:
    run = Run()
    with Liveness(run), ExitStack() as stack:
        try:  # the engine the runs will test: the one at DOCKER_HOST, else a private one as they start
            engine = Engine.connect(docker_host())
            stack.callback(engine.client.close)
        except NoEngine:
            engine = stack.enter_context(PrivateEngine(run, "floor")).engine
        image = ensure_probe_image(engine.client)
        floor = {"container_s": round(container_floor(engine, image, run), 3),
                 "namespace_veth_s": round(namespace_floor(run), 4)}
    serial, serial_cpu_s = timed(out_dir / "serial")
    parallel, parallel_cpu_s = timed(out_dir / "parallel", *PARALLEL)
    runs = {"serial": summarize(serial, serial_cpu_s, [], floor["container_s"]),
            "parallel": summarize(parallel, parallel_cpu_s, list(PARALLEL), floor["container_s"])}
    outcomes = {name: {c["id"]: c["status"] for c in r.required()["claims"]} for name, r in
                (("serial", serial), ("parallel", parallel))}
    changed = {claim: [status, outcomes["parallel"].get(claim)] for claim, status in outcomes["serial"].items()
               if outcomes["parallel"].get(claim) != status}
    speedup = round(serial.wall_s / parallel.wall_s, 2)
    info = serial.required()["run_info"]
    result = {
        "engine": info.get("engine_version"),
        "kernel": info.get("kernel"),
        "cpus": CPUS,
        "floor": floor,
        "runs": runs,
        "speedup": speedup,
        "outcome_changes": changed,
        "goals": {
            "parallel_wall_s": [runs["parallel"]["wall_s"], runs["parallel"]["wall_s"] <= GOALS["parallel_wall_s"]],
            "wall_per_floor": [runs["parallel"]["wall_per_floor"],
                               (runs["parallel"]["wall_per_floor"] or 0) <= GOALS["wall_per_floor"]],
            "speedup": [speedup, speedup >= GOALS["speedup"]],
            "no_outcome_changes": [len(changed), not changed],
        },
    }
    write_atomic(checked_dir(out_dir) / "benchmark.json", json.dumps(result, indent=2) + "\n")
    return result


def render(result: dict[str, Any]) -> str:
    floor = result["floor"]
    lines = [f"floor: container create+start+remove {floor['container_s']:.3f} s, "
             f"namespace+veth {floor['namespace_veth_s'] * 1000:.1f} ms (medians of {SAMPLES})"]
    for name, run in result["runs"].items():
        lines.append(f"{name:8} {' '.join(run['args']) or '(serial)':8} wall {run['wall_s']:6.1f} s  "
                     f"{run['containers']} containers, {run['namespaces']} namespaces  "
                     f"wall/(containers x floor) {run['wall_per_floor']}  exit {run['exit']}  {run['totals']}")
        lines.append(f"{'':17} machine CPU {run['cpu_s']:6.1f} s: no wall below {run['cpu_bound_wall_s']:.1f} s "
                     f"on {result['cpus']} CPUs")
        lines += [f"    {c['duration_s']:6.2f} s  {c['claim']}" for c in run["slowest"]]
    lines.append(f"serial/parallel {result['speedup']}")
    for claim, (before, after) in result["outcome_changes"].items():
        lines.append(f"OUTCOME CHANGED {claim}: serial {before}, parallel {after}")
    for goal, (value, met) in result["goals"].items():
        lines.append(f"goal {goal}: {value} {'met' if met else 'NOT MET'} (target {GOALS.get(goal, 0)})")
    return "\n".join(lines)


def main(argv: list[str], parser: argparse.ArgumentParser) -> int:

    parser.add_argument("--out", type=Path, default=Path("reports/benchmark"),
                        help="where benchmark.json and the two runs' reports go")
    args = parser.parse_args(argv)
    try:
        result = benchmark(args.out.resolve())
    except RunFailed as exc:
        print(f"conformance benchmark: {exc}", file=sys.stderr)
        return 3
    print(render(result))
    print(f"figures: {args.out}/benchmark.json")
    return 0
