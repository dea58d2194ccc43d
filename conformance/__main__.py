"""``python -m conformance [--report-dir DIR] [pytest args]``: run the checks, write the reports.
``python -m conformance cleanup``: remove what runs that died (killed, crashed) left behind.

Exit status is pytest's: 0 only when no claim failed unexpectedly and nothing errored.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Not imported from .plugin: pytest must be the first to import the plugin so it can rewrite its asserts.
CHECKS_DIR = Path(__file__).parent / "checks"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        print("conformance: must run as root: it creates network namespaces and reads the engine's "
              "firewall (try: sudo python -m conformance)", file=sys.stderr)
        return 4
    if argv[:1] == ["cleanup"]:
        return cleanup()
    # `python -m conformance` imports this package before pytest can rewrite it; that is expected.
    quiet = "ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning"
    return int(pytest.main([str(CHECKS_DIR), "-p", "no:cacheprovider", "-W", quiet, *argv]))


def cleanup() -> int:
    from .lab.sweep import sweep_dead_runs

    swept = sweep_dead_runs()
    for run_id, removed in swept.items():
        print(f"run {run_id} (dead): {'removed' if removed else 'nothing was left'}")
        for line in removed:
            print(f"  {line}")
    if not swept:
        print("no dead runs: nothing to remove (live runs are never touched)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
