"""summary.md: the claims matrix a person reads in ten seconds, in a terminal as on GitHub.

Every value from the report goes through conformance/reports/markdown.py, so that none becomes markup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .files import write_atomic
from .markdown import code, text
from .results import UNEXPECTED

# How a status reads: a word, which every font has (the emoji this used to be were empty boxes in a browser or
# terminal without an emoji font); the outcomes that fail a run in capitals, and in Markdown in bold.
WORD = {"passed": "passed", "failed": "FAILED", "error": "ERROR", "skipped": "skipped", "xfailed": "xfailed",
        "xpassed": "XPASSED", "missing": "missing"}
MARK = {status: f"**{word}**" if status in UNEXPECTED else word for status, word in WORD.items()}


def _cell(value: Any) -> str:
    return text(value, 160)


def render(report: dict[str, Any]) -> str:
    raw = report["run_info"]
    info = {key: text(value) for key, value in raw.items()}
    totals = ", ".join(f"{n} {text(s)}" for s, n in report["totals"].items() if n)
    lines = [
        "# Docker networking conformance",
        "",
        (f"- engine: {info.get('engine_version')} (API {info.get('api_version')})"
         f"{' — private engine started by the suite' if raw.get('engine_private') else ''}"
         if raw.get("engine_version") else "- engine: none used (only checks that need no engine ran)"),
        f"- kernel: {info.get('kernel')} — {info.get('distro')}",
        f"- firewall: {info.get('firewall_backend', '—')} ({info.get('iptables_variant', '—')})",
        f"- run {info.get('run_id')}: {info.get('start')} → {info.get('end')}",
        "",
        f"**{totals or 'no claims ran'}**",
        "",
        "## Coverage per article",
        "",
        "| article | claims catalogued | checked this run | out of scope | outcomes |",
        "|---|---|---|---|---|",
    ]
    for doc, row in report.get("coverage", {}).items():
        outcomes = ", ".join(f"{n} {text(s)}" for s, n in row["outcomes"].items()) or "—"
        lines.append(f"| {code(doc)} | {row['catalogued']} | {row['checked']} | {row['out_of_scope']} | {outcomes} |")
    if "mutation" in report:
        lines += _mutation(report["mutation"])
    lines += [
        "",
        "## Claims",
        "",
        "| claim | kind | status | detail |",
        "|---|---|---|---|",
    ]
    for claim in report["claims"]:
        detail = claim["message"] or ""
        lines.append(f"| {code(claim['id'])} | {text(claim['kind'])} | {MARK[claim['status']]} | {_cell(detail)} |")
    return "\n".join(lines) + "\n"


def _mutation(mutation: dict[str, Any]) -> list[str]:
    score = f"{mutation['score']:.0%}" if mutation["score"] is not None else "—"
    lines = [
        "",
        "## Mutation score",
        "",
        f"**{score}**: {mutation['caught']} of {mutation['applied']} faults applied were caught by the checks "
        f"mapped to them; {len(mutation['no_fault'])} claims have a written reason why no fault can be made.",
        "",
    ]
    lines += [f"- **missed**: {text(line)}" for line in mutation["missed"]]
    lines += ["", "| fault | what it breaks | caught |", "|---|---|---|"]
    for name, fault in mutation["faults"].items():
        lines.append(f"| {code(name)} | {_cell(fault['why'])} | {fault['caught']}/{fault['applied']} |")
    lines += ["", "| healthy configuration | unexplained outcomes |", "|---|---|"]
    wrong = {"healthy private engine": mutation["healthy_unexplained"]}
    wrong |= {f"{code(name)}: {_cell(c['why'])}": c["unexplained"] for name, c in mutation["configurations"].items()}
    for name, unexplained in wrong.items():
        lines.append(f"| {name} | {_reasons(unexplained) or 'none'} |")
    expected = {name: c["expected"] for name, c in mutation["configurations"].items() if c.get("expected")}
    if expected:
        lines += ["", "| healthy configuration | expected failures, with their reason |", "|---|---|"]
        lines += [f"| {code(name)} | {_reasons(found)} |" for name, found in expected.items()]
    if mutation.get("checks"):
        lines += ["", "| claim | killed by | missed by |", "|---|---|---|"]
        lines += [f"| {code(cid)} | {', '.join(map(text, c['killed_by'])) or _cell(c.get('no_fault') or '—')} "
                  f"| {', '.join(map(text, c['missed_by']))} |" for cid, c in mutation["checks"].items()]
    return lines


def _reasons(found: dict[str, Any]) -> str:
    """{claim: why} as one cell: each claim and its reason, "; " between them."""
    return "; ".join(f"{code(cid)} {_cell(why)}" for cid, why in found.items())


def write(report: dict[str, Any], path: Path) -> Path:
    return write_atomic(path, render(report))
