"""What this process created, by kind: report.json's ``created``, the benchmark's denominator."""

from collections import Counter

CREATED: Counter[str] = Counter()
