"""Known deviations of a host class, kept apart from the checks as web-platform-tests keeps its metadata.

An expectations file says which claims are known to fail on hosts like this one,
and why; ``--expectations FILE`` reports such a failure as expected (xfailed,
with the reason) instead of failing CI, and reports the claim as XPASS — a
failure — once the deviation is gone, so the file never goes stale silently.
``status: flaky`` is for an engine whose behaviour varies from run to run (as
web-platform-tests lists two expected statuses): a failure is xfailed with the
reason, a pass is a pass, and the entry stays until it is removed by hand::

    # when: the hosts this file describes; same syntax as a claim's `applies`
    when:
      kernel: ">=6.2"
      iptables_variant: legacy
    expected:
      ports/docker-proxy-per-binding:
        status: failed
        reason: our fleet runs dockerd with a patched proxy

``python -m conformance update-expectations REPORT`` writes or updates one from a run.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..catalog import read_yaml

STATUSES = ("failed", "flaky")
# What a `when` condition may be: a value a run fact equals, or a version specifier (a string).
SCALARS = (str, int, float, bool, type(None))
# The run facts a generated file's `when` names: what tells host classes apart.
WHEN_FACTS = ("kernel", "engine_version", "iptables_variant")


class ExpectationsError(ValueError):
    """The expectations file is malformed or names claims the catalog does not have."""


@dataclass(frozen=True)
class Expected:
    status: str
    reason: str


@dataclass(frozen=True)
class Expectations:
    path: str
    when: dict[str, Any]
    expected: dict[str, Expected]


def load(path: Path, claim_ids: Collection[str]) -> Expectations:
    """Read *path*; every claim it names must be one of *claim_ids* (the catalog's), and every value of the
    type the format gives it: anything else is one ExpectationsError naming the file, never a traceback."""
    try:
        data = read_yaml(Path(path))
    except (OSError, yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        raise ExpectationsError(f"{path}: cannot read: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ExpectationsError(f"{path}: not a mapping of when and expected, but a {type(data).__name__}")
    unknown_keys = set(map(str, data)) - {"when", "expected"}
    if unknown_keys:
        raise ExpectationsError(f"{path}: unknown keys {sorted(unknown_keys)} (expected: when, expected)")
    when, entries = data.get("when") or {}, data.get("expected") or {}
    if not isinstance(when, dict) or not all(isinstance(k, str) and isinstance(v, SCALARS) for k, v in when.items()):
        raise ExpectationsError(f"{path}: when: needs a mapping of run facts to values or version specifiers")
    if not isinstance(entries, dict):
        raise ExpectationsError(f"{path}: expected: needs a mapping of claim ids to their status and reason")
    expected = {}
    for claim_id, entry in entries.items():
        if not isinstance(claim_id, str) or claim_id not in claim_ids:
            raise ExpectationsError(f"{path}: {claim_id}: no such claim in the catalog")
        if (not isinstance(entry, dict) or set(entry) != {"status", "reason"} or entry["status"] not in STATUSES
                or not isinstance(entry["reason"], str) or not entry["reason"].strip()):
            raise ExpectationsError(f"{path}: {claim_id}: needs status ({', '.join(STATUSES)}) and a reason, "
                                    "and nothing else")
        expected[claim_id] = Expected(entry["status"], " ".join(entry["reason"].split()))
    return Expectations(str(path), dict(when), expected)


def _comment(value: Any) -> str:
    """*value* fit for a YAML comment: one line (YAML ends a comment at any line break, NEL and U+2028 too; the
    rest of a hostname would be the file's data) of printable characters (a YAML reader refuses the others)."""
    return " ".join("".join(c if c.isprintable() else " " for c in str(value)).split())


def updated(report: dict[str, Any], existing: Expectations | None = None) -> tuple[str, list[str], list[str]]:
    """The YAML text of an expectations file for *report*'s host, and the claim ids (added, removed).

    Every claim that failed in the report is expected to fail; a reason already written for it is
    kept.  Claims that now pass, xfail or are skipped leave the file; claims the report did not run
    keep their entries.  Every value from the report is written by yaml.safe_dump, which quotes what
    needs it; the comment above it holds no line break.
    """
    info = report["run_info"]
    old = existing.expected if existing else {}
    ran = {c["id"]: c for c in report["claims"]}
    expected = {cid: entry for cid, entry in old.items() if cid not in ran}
    for claim_id, claim in ran.items():
        if claim_id in old and old[claim_id].status == "flaky":
            expected[claim_id] = old[claim_id]  # one run's outcome says nothing about a varying one
        elif claim["status"] == "failed":
            reason = old[claim_id].reason if claim_id in old else (
                f"observed in run {info.get('run_id')}: {' '.join(claim['message'].split())[:300]}")
            expected[claim_id] = Expected("failed", reason)
    when = existing.when if existing and existing.when else {
        key: info[key] for key in WHEN_FACTS if info.get(key) is not None}
    text = yaml.safe_dump({
        "when": when,
        "expected": {cid: {"status": e.status, "reason": e.reason} for cid, e in sorted(expected.items())},
    }, sort_keys=False, allow_unicode=True, width=100)
    host, run = _comment(info.get("hostname")), _comment(info.get("run_id"))
    header = (f"# Known deviations for hosts like {host} (run {run}).\n"
              "# Apply with: python -m conformance --expectations THIS_FILE; replace each observed reason with why.\n")
    return header + text, sorted(expected.keys() - old.keys()), sorted(old.keys() - expected.keys())
