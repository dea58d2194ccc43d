"""``docker-net-conformance list [--json] [selection]``: the claims a run would check, and nothing run.

The claims come from the run's own collection (pytest ``--collect-only`` with the suite's plugin), so -k, -m,
--claim and --tier select exactly what they select in a run.  Collecting creates nothing and asks
no engine, so it needs neither root nor Docker.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys

import pytest

from .run import pytest_session


class _Collected:
    """What the collection selected."""

    def __init__(self):
        self.items: list[pytest.Item] = []

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.items = list(session.items)


def _row(item: pytest.Item, host_facts: set[str]) -> dict | None:
    from ..plugin.binding import claim_of, tier_of
    from ..plugin.needs import needs_engine

    claim = claim_of(item)
    if claim is None:
        return None
    # A claim whose `applies` names an engine fact asks the engine before its check runs (binding._facts).
    engine = needs_engine(getattr(item, "fixturenames", ())) or bool(set(claim.applies) - host_facts)
    return {**claim.to_dict(), "tier": tier_of(item), "needs_engine": engine, "nodeid": item.nodeid}


def _table(rows: list[dict]) -> str:
    columns = [("CLAIM", lambda r: r["id"]), ("KIND", lambda r: r["kind"]), ("TIER", lambda r: r["tier"]),
               ("TOPIC", lambda r: r["topic"]), ("ENGINE", lambda r: "yes" if r["needs_engine"] else "no"),
               ("ARTICLE", lambda r: ", ".join(dict.fromkeys(s["doc"] for s in r["sources"])))]
    cells = [[name for name, _ in columns]] + [[cell(row) for _, cell in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
                     for line in cells)


def main(argv: list[str], parser: argparse.ArgumentParser) -> int:
    from ..catalog import catalog
    from ..lab.kernel.machine import host_facts

    parser.allow_abbrev = False  # an abbreviation of --json must not swallow a pytest option
    parser.epilog = "Every other argument selects as in a run: -k EXPR, -m MARK, --claim ID, --tier audit|full."
    parser.add_argument("--json", action="store_true",
                        help="one JSON object: each claim's catalog fields, tier, needs_engine and pytest node id")
    args, selection = parser.parse_known_args(argv)
    collected = _Collected()
    with contextlib.redirect_stdout(io.StringIO()) as collection:  # pytest's own list is not the listing
        status = pytest_session(["--collect-only", "-q", *selection], [collected])
    if status not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        print(collection.getvalue(), end="", file=sys.stderr)  # what could not be collected, and why
        return status
    facts = set(host_facts())
    rows = [row for row in (_row(item, facts) for item in collected.items) if row]
    total = len(catalog())
    if args.json:
        print(json.dumps({"selected": len(rows), "catalogued": total, "claims": rows}, indent=2, ensure_ascii=False))
        return 0
    if rows:
        print(_table(rows))
    print(f"{len(rows)} of {total} claims selected, {sum(r['needs_engine'] for r in rows)} of them need an engine; "
          "nothing was run", file=sys.stderr if not rows else sys.stdout)
    return 0
