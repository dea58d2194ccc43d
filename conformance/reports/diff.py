"""Compare two reports claim by claim: what regressed, improved, appeared or disappeared, and why the hosts differ.

A kernel or firewall engineer runs the suite before and after a change; this is
the answer to "what did my change do", in Markdown fit for a CI comment (every
value from the reports through conformance/reports/markdown.py: none becomes markup).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .markdown import code, text
from .summary import MARK

# Outcomes that make a run fail; a claim moving into one of them regressed, out of one improved.
BAD = ("failed", "error", "xpassed")
# What the environment block compares, in the order it is printed.
ENVIRONMENT = ("hostname", "kernel", "distro", "engine_version", "engine_private", "engine_variant",
               "firewall_backend", "iptables_variant", "daemon_options", "bridge", "expectations")


@dataclass
class Diff:
    environment: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    regressed: list[tuple[str, str, str, str]] = field(default_factory=list)  # (id, base, head, head message)
    improved: list[tuple[str, str, str, str]] = field(default_factory=list)
    changed: list[tuple[str, str, str, str]] = field(default_factory=list)  # neither, e.g. passed -> skipped
    appeared: list[tuple[str, str]] = field(default_factory=list)  # (id, head status)
    disappeared: list[tuple[str, str]] = field(default_factory=list)  # (id, base status)

    @property
    def has_regressions(self) -> bool:
        return bool(self.regressed) or any(status in BAD for _, status in self.appeared)


def diff(base: dict[str, Any], head: dict[str, Any]) -> Diff:
    result = Diff()
    for key in ENVIRONMENT:
        before, after = base["run_info"].get(key), head["run_info"].get(key)
        if before != after:
            result.environment[key] = (before, after)
    old = {c["id"]: c for c in base["claims"]}
    new = {c["id"]: c for c in head["claims"]}
    for claim_id in sorted(old.keys() | new.keys()):
        if claim_id not in new:
            result.disappeared.append((claim_id, old[claim_id]["status"]))
        elif claim_id not in old:
            result.appeared.append((claim_id, new[claim_id]["status"]))
        elif old[claim_id]["status"] != new[claim_id]["status"]:
            before, after = old[claim_id]["status"], new[claim_id]["status"]
            message = new[claim_id]["message"]
            row = (claim_id, before, after, message.splitlines()[0] if message else "")  # pytest's detail follows
            if after in BAD and before not in BAD:
                result.regressed.append(row)
            elif before in BAD and after not in BAD:
                result.improved.append(row)
            else:
                result.changed.append(row)
    return result


def _cell(value: Any) -> str:
    return text(value, 200)


def _environment_value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items()) if k != "argv")
    return "—" if value is None else str(value)


def render(result: Diff, base_name: str = "base", head_name: str = "head") -> str:
    verdict = "**REGRESSIONS**" if result.has_regressions else "no regressions"
    base, head = code(base_name), code(head_name)
    lines = [f"## Conformance diff: {base} → {head}", "", verdict, ""]
    if result.environment:
        lines += ["### Environment", "", f"| | {base} | {head} |", "|---|---|---|"]
        for key, (before, after) in result.environment.items():
            lines.append(f"| {key} | {_cell(_environment_value(before))} | {_cell(_environment_value(after))} |")
        lines.append("")
    for title, rows in (("Regressed", result.regressed), ("Improved", result.improved),
                        ("Changed", result.changed)):
        if rows:
            lines += [f"### {title} ({len(rows)})", "", "| claim | before | after | detail |", "|---|---|---|---|"]
            lines += [f"| {code(cid)} | {MARK[b]} | {MARK[a]} | {_cell(msg)} |" for cid, b, a, msg in rows]
            lines.append("")
    for title, entries in (("Appeared", result.appeared), ("Disappeared", result.disappeared)):
        if entries:
            lines += [f"### {title} ({len(entries)})", "", *(f"- {code(cid)}: {MARK[s]}" for cid, s in entries), ""]
    if not (result.regressed or result.improved or result.changed or result.appeared or result.disappeared):
        lines += ["Every claim has the same outcome in both runs.", ""]
    return "\n".join(lines)
