"""``docker-net-conformance cleanup``: remove what runs that died left behind; live runs are never touched."""

from __future__ import annotations

import argparse


def main(argv: list[str], parser: argparse.ArgumentParser) -> int:
    from ..lab.safety.sweep import sweep_dead_runs

    parser.parse_args(argv)
    swept = sweep_dead_runs()
    for run_id, removed in swept.items():
        print(f"run {run_id} (dead): {'removed' if removed else 'nothing was left'}")
        for line in removed:
            print(f"  {line}")
    if not swept:
        print("no dead runs: nothing to remove (live runs are never touched)")
    return 0
