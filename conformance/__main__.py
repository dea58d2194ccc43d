"""``python -m conformance [--report-dir DIR] [pytest args]``: run the checks, write the reports.

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
    # `python -m conformance` imports this package before pytest can rewrite it; that is expected.
    quiet = "ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning"
    return int(pytest.main([str(CHECKS_DIR), "-p", "no:cacheprovider", "-W", quiet, *argv]))


if __name__ == "__main__":
    sys.exit(main())
