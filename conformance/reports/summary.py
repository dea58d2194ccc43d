"""summary.md: the claims matrix a person reads in ten seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

MARK = {"passed": "✅ passed", "failed": "❌ FAILED", "error": "💥 ERROR", "skipped": "⏭ skipped",
        "xfailed": "☑️ xfailed", "xpassed": "⚠️ XPASSED"}


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")[:160]


def render(report: dict[str, Any]) -> str:
    info = report["run_info"]
    totals = ", ".join(f"{n} {s}" for s, n in report["totals"].items() if n)
    lines = [
        "# Docker networking conformance",
        "",
        (f"- engine: {info.get('engine_version')} (API {info.get('api_version')})"
         f"{' — private engine started by the suite' if info.get('engine_private') else ''}"
         if info.get("engine_version") else "- engine: none used (only checks that need no engine ran)"),
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
        outcomes = ", ".join(f"{n} {s}" for s, n in row["outcomes"].items()) or "—"
        lines.append(f"| `{doc}` | {row['catalogued']} | {row['checked']} | {row['out_of_scope']} | {outcomes} |")
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
        lines.append(f"| `{claim['id']}` | {claim['kind']} | {MARK.get(claim['status'], claim['status'])} "
                     f"| {_cell(detail)} |")
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
    lines += [f"- ❌ {line}" for line in mutation["missed"]]
    lines += ["", "| fault | what it breaks | caught |", "|---|---|---|"]
    for name, fault in mutation["faults"].items():
        lines.append(f"| `{name}` | {_cell(fault['why'])} | {fault['caught']}/{fault['applied']} |")
    lines += ["", "| healthy configuration | unexplained outcomes |", "|---|---|"]
    wrong = {"healthy private engine": mutation["healthy_unexplained"]}
    wrong |= {f"`{name}`: {c['why']}": c["unexplained"] for name, c in mutation["configurations"].items()}
    for name, unexplained in wrong.items():
        detail = "; ".join(f"`{cid}` {text}" for cid, text in unexplained.items()) or "none"
        lines.append(f"| {_cell(name)} | {_cell(detail)} |")
    expected = {name: c["expected"] for name, c in mutation["configurations"].items() if c.get("expected")}
    if expected:
        lines += ["", "| healthy configuration | expected failures, with their reason |", "|---|---|"]
        lines += [f"| `{name}` | {_cell('; '.join(f'`{cid}` {text}' for cid, text in found.items()))} |"
                  for name, found in expected.items()]
    if mutation.get("checks"):
        lines += ["", "| claim | killed by | missed by |", "|---|---|---|"]
        lines += [f"| `{cid}` | {', '.join(c['killed_by']) or _cell(c.get('no_fault') or '—')} "
                  f"| {', '.join(c['missed_by']) or ''} |" for cid, c in mutation["checks"].items()]
    return lines


def write(report: dict[str, Any], path: Path) -> Path:
    path.write_text(render(report), encoding="utf-8")
    return path
