"""Coverage per article: how much of each source text the catalog holds, and how this run judged it."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..catalog import Catalog
from .results import STATUSES


def per_article(catalog: Catalog, claims: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{article: {catalogued, checked, out_of_scope, outcomes}} for every article the catalog cites.

    *claims* are report.json claim entries; a claim citing several articles counts for each.
    """
    status = {c["id"]: c["status"] for c in claims}
    docs = sorted({s.doc for claim in catalog for s in claim.sources} | {p.doc for p in catalog.out_of_scope})
    coverage = {}
    for doc in docs:
        cited = [claim.id for claim in catalog if any(s.doc == doc for s in claim.sources)]
        outcomes = Counter(status[c] for c in cited if c in status)
        coverage[doc] = {
            "catalogued": len(cited),
            "checked": sum(outcomes.values()),
            "out_of_scope": sum(1 for p in catalog.out_of_scope if p.doc == doc),
            "outcomes": {s: outcomes[s] for s in STATUSES if outcomes[s]},
        }
    return coverage
