"""report.json: the canonical, diffable record of one run, from which the other reports derive.

Contract for users' CI: the top-level ``run_info`` and ``claims`` fields, and in each
claim ``id``, ``status``, ``statement``, ``sources``, ``duration``, ``message`` and
``evidence``.  Fields are only ever added (``coverage``, ``mutation``, ``expectation``
came later); report.schema.json is the full, versioned description.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from ..catalog import Catalog
from .coverage import per_article
from .files import write_atomic
from .results import STATUSES, ClaimResult

SCHEMA = "docker-net-conformance/report/v1"  # report.schema.json's $id


def build(catalog: Catalog, results: list[ClaimResult], run_info: dict[str, Any]) -> dict[str, Any]:
    claims = []
    for result in sorted(results, key=lambda r: r.claim):
        claim = catalog[result.claim]
        claims.append({
            **claim.to_dict(),
            "status": result.status,
            "message": result.message,
            "duration": round(result.duration, 3),
            "evidence": result.evidence,
            "check": result.nodeid,
            "tier": result.tier,
            "expectation": result.expectation,
            "engine": result.engine,
        })
    counts = Counter(c["status"] for c in claims)
    return {
        "schema": SCHEMA,
        "run_info": run_info,
        "totals": {status: counts.get(status, 0) for status in STATUSES},
        "claims": claims,
        "coverage": per_article(catalog, claims),
    }


def write(report: dict[str, Any], path: Path) -> Path:
    return write_atomic(path, json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
