"""Secrets kept out of what the suite records, and the host's own state kept out of its evidence.

Reports are uploaded as CI artefacts and attached to tickets, so nothing the suite
records may carry a credential: a daemon's command line (tokens in ``--log-opt``
values, passwords in URLs), a ``DOCKER_HOST`` with a user and password.  One
rule serves every place that records: the userinfo of any URL becomes ``***``,
and so does the value of any option or ``name=value`` pair whose name says it is
a secret (token, password, secret, key, auth, credential).  That covers the
secret-bearing ``--log-opt`` keys of Docker's log drivers (``splunk-token``,
``logentries-token``; a ``loki-url`` or ``splunk-url`` by its userinfo).

The evidence helpers at the end keep a check's evidence to the suite's own objects
where the engine under test is the host's: its NAT table, the containers of
``network inspect bridge`` and its resolv.conf hold other workloads' and the
host's own configuration.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

MASK = "***"
_SECRET = r"[A-Za-z0-9_.-]*(?:token|passw|secret|key|auth|credential)[A-Za-z0-9_.-]*"
_SECRET_NAME = re.compile(rf"^-*{_SECRET}$", re.IGNORECASE)
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@?#]+@")
_BUILTIN = {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}  # iptables' own chains
_NAMED = re.compile(rf"(?P<name>{_SECRET})=(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&\"']+)", re.IGNORECASE)


def text(value: str) -> str:
    """*value* with every URL's userinfo and every secret-named ``name=value``'s value masked."""
    value = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", value)
    return _NAMED.sub(lambda m: f"{m['name']}={MASK}", value)


def argv(args: Sequence[str]) -> list[str]:
    """A command line with its secrets masked: the value of an option whose name says secret, whether given
    as ``--name=value`` or as the next argument, and text()'s rule on every other argument."""
    shown: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next and not arg.startswith("-"):
            shown.append(MASK)
            hide_next = False
            continue
        hide_next = False
        name, equals, _ = arg.partition("=")
        if arg.startswith("-") and _SECRET_NAME.match(name):
            if equals:
                shown.append(f"{name}={MASK}")
            else:
                shown.append(arg)
                hide_next = True
        else:
            shown.append(text(arg))
    return shown


def nat_evidence(dump: str, own: Iterable[str]) -> str:
    """An engine's NAT configuration (``Engine.nat_dump()``: iptables-save text, or nft's JSON) cut to the
    rules that name one of *own* (the suite's subnets, bridges, addresses, ports: a token equal to one, or
    one followed by ``:port`` or ``/prefix``), the rules that jump to the chains holding those, and the
    declarations of those chains and the built-in ones.  For the host's engine the whole table is every
    other workload's ports and addresses."""
    words = {str(word) for word in own}
    if dump.lstrip().startswith("{"):
        return json.dumps(_nft_evidence(json.loads(dump), words), indent=1)
    lines = dump.splitlines()
    kept_rules = [line for line in lines if line.startswith("-A ") and _names(line.split(), words)]
    chains = {line.split()[1] for line in kept_rules}
    jumps = [line for line in lines if line.startswith("-A ") and line not in kept_rules
             and _jump(line.split()) in chains]
    chains |= {line.split()[1] for line in jumps}
    shown = []
    for line in lines:
        if line.startswith(":"):
            chain = line[1:].split()[0]
            if chain in chains or chain in _BUILTIN:
                shown.append(line)
        elif line.startswith("-A "):
            if line in kept_rules or line in jumps:
                shown.append(line)
        elif line.startswith(("*", "COMMIT")):
            shown.append(line)
    return "\n".join(shown) + ("\n" if shown else "")


def _names(tokens: Iterable[str], words: set[str]) -> bool:
    """Whether one of a rule's *tokens* names one of *words*: equals it, or is it followed by :port or /prefix."""
    return any(t in words or t.partition(":")[0] in words or t.partition("/")[0] in words
               for t in (token.strip("\"'") for token in tokens))


def _jump(tokens: list[str]) -> str | None:
    return next((tokens[i + 1] for i, t in enumerate(tokens[:-1]) if t in ("-j", "-g")), None)


def _nft_evidence(listing: dict[str, Any], words: set[str]) -> dict[str, Any]:
    """nft -j's listing cut like an iptables dump: the rules naming one of *words*, and the tables and
    chains that hold them."""
    entries = listing.get("nftables", [])
    rules = [e["rule"] for e in entries if "rule" in e and _nft_names(e["rule"].get("expr", []), words)]
    held = {(r.get("family"), r.get("table"), r.get("chain")) for r in rules}
    kept = []
    for entry in entries:
        if "metainfo" in entry or "table" in entry:
            kept.append(entry)
        elif "chain" in entry:
            chain = entry["chain"]
            if (chain.get("family"), chain.get("table"), chain.get("name")) in held:
                kept.append(entry)
        elif "rule" in entry and entry["rule"] in rules:
            kept.append(entry)
    return {"nftables": kept}


def _nft_names(node: Any, words: set[str]) -> bool:
    if isinstance(node, dict):
        return any(_nft_names(v, words) for v in node.values())
    if isinstance(node, list):
        return any(_nft_names(v, words) for v in node)
    return isinstance(node, str | int) and not isinstance(node, bool) and str(node) in words


def inspect_evidence(inspect: dict[str, Any], prefix: str) -> dict[str, Any]:
    """``network inspect`` with its Containers cut to the suite's own (names starting with the run's
    *prefix*, ``cf<run-id>``), and how many others it held: on the host's engine the default bridge
    carries every other workload's containers, names, addresses and MACs."""
    shown = copy.deepcopy(inspect)
    containers = shown.get("Containers") or {}
    own = {cid: c for cid, c in containers.items() if str(c.get("Name", "")).startswith(prefix)}
    if "Containers" in shown:
        shown["Containers"] = own
        shown["ContainersOfOthers"] = len(containers) - len(own)
    return shown


def resolv_conf_evidence(content: str) -> str:
    """A host's resolv.conf as evidence: its nameserver lines, and of every other line only its keyword
    (``search ***``).  Search domains and options name the host's own networks."""
    shown = []
    for line in content.splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        shown.append(" ".join(words) if words[0] == "nameserver" else f"{words[0]} {MASK}")
    return "\n".join(shown) + ("\n" if shown else "")


def names_evidence(names: Iterable[str], prefixes: Sequence[str]) -> dict[str, Any]:
    """A listing of the host's (its links, its named namespaces) as evidence: the names starting with one of
    *prefixes* (the suite's own, ``cf<run-id>``, and the fixed ones a check asks about, ``lo``, ``eth0``),
    and how many others there were."""
    listed = list(names)
    own = sorted(n for n in listed if n.startswith(tuple(prefixes)))
    return {"own": own, "others": len(listed) - len(own)}
