"""``python -m conformance``: the same command as the ``docker-net-conformance`` console script (conformance/cli.py)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
