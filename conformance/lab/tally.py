"""What this process created, by kind: report.json's ``created``, the benchmark's denominator."""

import threading
from collections import Counter

CREATED: Counter[str] = Counter()
_lock = threading.Lock()


def count(kind: str) -> None:
    """One more *kind* created (containers start from several threads at once)."""
    with _lock:
        CREATED[kind] += 1
