"""The fleet matrix: claims × hosts from many reports, as Markdown and as one static HTML page.

Each host column is labelled by what tells hosts apart (hostname, kernel, engine
product and version, firewall backend, and the private engine's variant or
binary); the claims whose outcome differs between the columns come first, then
the rest grouped by topic; a cell shows the status and links to that claim's
evidence on that host, and the Markdown lists why the differing ones differ.

A status is its word (summary.py's, which every font has) and, on the page, a
colour of its own.  The reports come from other hosts, so nothing in them is
trusted: every value is escaped (conformance/reports/markdown.py for the
Markdown), every link is a quoted relative path, and the page's
Content-Security-Policy allows its one stylesheet and nothing else to load or run.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .files import checked_dir, write_atomic
from .markdown import code, text
from .results import UNEXPECTED
from .summary import MARK, WORD

# Each status's background on the page (tests/test_report_tools.py finds them in a screenshot).
COLOURS = {"passed": "#c8e6c9", "failed": "#f4b6b0", "error": "#e1bee7", "xpassed": "#ffcc80", "skipped": "#dcdcdc",
           "xfailed": "#fff59d", "missing": "#bbdefb"}
CSS = "\n".join([
    "body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; }",
    "table { border-collapse: collapse; }",
    "th, td { border: 1px solid #999; padding: .25em .5em; text-align: left; vertical-align: top; }",
    "th.topic { background: #eee; }",
    *(f"td.{status} {{ background: {colour}; }}" for status, colour in COLOURS.items()),
    f"{', '.join(f'td.{status}' for status in UNEXPECTED)} {{ font-weight: bold; }}",
])
# Nothing may load or run but the stylesheet above, named by its hash: not a script, frame, image or form.
CSP = (f"default-src 'none'; style-src 'sha256-{base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()}'; "
       "base-uri 'none'; form-action 'none'")


@dataclass(frozen=True)
class Host:
    label: str
    report_dir: Path
    claims: dict[str, dict[str, Any]]


def host_label(report: dict[str, Any]) -> str:
    info = report["run_info"]
    product = f"{info['engine_product']} " if info.get("engine_product") else ""
    parts = [info.get("hostname", "?"), f"kernel {info.get('kernel', '?')}",
             f"engine {product}{info.get('engine_version') or 'none'}",
             info.get("iptables_variant") or info.get("firewall_backend") or "no firewall"]
    if info.get("engine_variant"):
        parts.append(f"variant {info['engine_variant']}")
    elif info.get("engine_private") and info.get("engine_binary"):
        parts.append(info["engine_binary"])
    return " · ".join(parts)


def hosts(reports: list[tuple[Path, dict[str, Any]]]) -> list[Host]:
    return [Host(host_label(report), path.parent, {c["id"]: c for c in report["claims"]})
            for path, report in reports]


def _status(host: Host, claim_id: str) -> str:
    return host.claims[claim_id]["status"] if claim_id in host.claims else "missing"


def differing(columns: list[Host]) -> list[str]:
    """The claims whose outcome is not the same on every host, sorted."""
    ids = {claim_id for host in columns for claim_id in host.claims}
    return sorted(c for c in ids if len({_status(h, c) for h in columns}) > 1)


def differ_group(columns: list[Host]) -> str:
    return f"where the {len(columns)} differ ({len(differing(columns))})"


def rows(columns: list[Host]) -> dict[str, list[str]]:
    """{group: claim ids}: the claims that differ between hosts first, then the others by topic, sorted."""
    differ = differing(columns) if len(columns) > 1 else []
    grouped: dict[str, set[str]] = {}
    for host in columns:
        for claim in host.claims.values():
            if claim["id"] not in differ:
                grouped.setdefault(claim["topic"], set()).add(claim["id"])
    first = {differ_group(columns): differ} if differ else {}
    return first | {topic: sorted(ids) for topic, ids in sorted(grouped.items())}


def why_they_differ(columns: list[Host]) -> list[str]:
    """Markdown lines, one per differing claim: the hosts (by number) of each outcome, and its message."""
    lines = []
    for claim_id in differing(columns) if len(columns) > 1 else []:
        outcomes: dict[str, list[str]] = {}
        for i, host in enumerate(columns):
            claim = host.claims.get(claim_id) or {}
            message = (claim.get("message") or "").strip().splitlines()
            outcome = _status(host, claim_id) + (f": {text(message[0], 300)}" if message else "")
            outcomes.setdefault(outcome, []).append(str(i + 1))
        lines.append(f"- {code(claim_id)}: " + "; ".join(f"{','.join(numbers)} {outcome}"
                                                     for outcome, numbers in outcomes.items()))
    return lines


def markdown(columns: list[Host]) -> str:
    lines = ["# Conformance matrix", "", "| claim | " + " | ".join(f"{i + 1}" for i in range(len(columns))) + " |",
             "|---|" + "---|" * len(columns)]
    for topic, ids in rows(columns).items():
        lines.append(f"| **{text(topic)}** |" + " |" * len(columns))
        for claim_id in ids:
            cells = [MARK[_status(h, claim_id)] for h in columns]
            lines.append(f"| {code(claim_id)} | " + " | ".join(cells) + " |")
    lines += ["", "Hosts:", ""] + [f"{i + 1}. {text(host.label)}" for i, host in enumerate(columns)]
    why = why_they_differ(columns)
    if why:
        lines += ["", "Why they differ:", "", *why]
    return "\n".join(lines) + "\n"


def _cell(host: Host, claim_id: str, out_dir: Path) -> str:
    claim = host.claims.get(claim_id)
    if claim is None:
        return f'<td class="missing">{WORD["missing"]}</td>'
    status = claim["status"]
    word = html.escape(WORD[status])
    title = html.escape(claim["message"] or status, quote=True)
    if claim["evidence"]:
        # Quoted: a path is never read as a scheme (javascript:), a host (//) or a query, whatever it holds.
        href = urllib.parse.quote(os.path.relpath(host.report_dir / claim["evidence"][0], out_dir))
        word = f'<a href="{html.escape(href, quote=True)}">{word}</a>'
    return f'<td class="{html.escape(status, quote=True)}" title="{title}">{word}</td>'


def page(columns: list[Host], out_dir: Path) -> str:
    head = "".join(f"<th>{html.escape(h.label)}</th>" for h in columns)
    body = []
    for topic, ids in rows(columns).items():
        body.append(f'<tbody><tr><th class="topic" colspan="{len(columns) + 1}">{html.escape(topic)}</th></tr>')
        for claim_id in ids:
            statement = next((h.claims[claim_id]["statement"] for h in columns if claim_id in h.claims), "")
            cells = "".join(_cell(h, claim_id, out_dir) for h in columns)
            body.append(f'<tr data-claim="{html.escape(claim_id)}"><th title="{html.escape(statement, quote=True)}">'
                        f"<code>{html.escape(claim_id)}</code></th>{cells}</tr>")
        body.append("</tbody>")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}"><title>Conformance matrix</title>'
            f"<style>{CSS}</style></head><body><h1>Docker networking conformance: {len(columns)} hosts</h1>"
            f"<table><thead><tr><th>claim</th>{head}</tr></thead>{''.join(body)}</table></body></html>\n")


def write(columns: list[Host], out: Path) -> tuple[Path, Path]:
    """matrix.md and matrix.html into *out* (conformance/reports/files.py's checked directory), each whole."""
    out = checked_dir(out)
    return (write_atomic(out / "matrix.md", markdown(columns)),
            write_atomic(out / "matrix.html", page(columns, out.resolve())))
