"""NAT rules kept in nftables tables of an engine's own, read as nftables' JSON (``nft -j``), never as text.

Docker 29's ``--firewall-backend=nftables`` keeps no iptables chains: the
bridge driver writes table ``ip docker-bridges`` (moby
daemon/libnetwork/drivers/bridge/internal/nftabler), with ``dnat to`` rules in
chain ``nat-prerouting-and-output`` and each bridge's ``masquerade`` rule in
``nat-postrouting-out__<bridge>``.  Each rule is reduced to what the articles'
iptables rules say (source, interfaces, protocol and port, the NAT action and
its target), so a configuration claim asks one question of either backend.
Debian's python3-nftables is not importable from the suite's virtual
environment, so the JSON comes from the ``nft`` program run in the namespace.
"""

from __future__ import annotations

import json
from typing import Any

from ..kernel.netns import Netns
from .firewall import NatRule

TABLE = ("ip", "docker-bridges")


def listing(netns: Netns, family: str = TABLE[0], table: str = TABLE[1]) -> dict[str, Any]:
    """``nft -j list table FAMILY TABLE`` in *netns*; an absent table lists nothing."""
    result = netns.run("nft", "-j", "list", "table", family, table)
    if result.returncode != 0:
        if "No such file or directory" in result.stderr:
            return {"nftables": []}
        raise RuntimeError(f"nft -j list table {family} {table} failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


def load(netns: Netns, ruleset: str) -> None:
    """``nft -f -`` in *netns*: only ever a namespace the suite made."""
    result = netns.run("sh", "-c", f"nft -f - <<'EOF'\n{ruleset}\nEOF")
    if result.returncode != 0:
        raise RuntimeError(f"nft -f failed in {netns}: {result.stderr.strip()}")


def _value(right: Any) -> str:
    if isinstance(right, dict) and "prefix" in right:
        return f"{right['prefix']['addr']}/{right['prefix']['len']}"
    if isinstance(right, dict) and "set" in right:
        return "{" + ", ".join(_value(item) for item in right["set"]) + "}"
    return str(right)


def _left(left: Any) -> str:
    if isinstance(left, dict) and "meta" in left:
        return left["meta"]["key"]
    if isinstance(left, dict) and "payload" in left:
        return f"{left['payload']['protocol']} {left['payload']['field']}"
    return json.dumps(left, sort_keys=True)


def rule(entry: dict[str, Any]) -> NatRule:
    """One ``{"rule": ...}`` object of nft's JSON as a NatRule, its ``text`` rendered from the JSON."""
    fields: dict[str, Any] = {}
    words = []
    action = ""
    for expr in entry["expr"]:
        if "match" in expr:
            match = expr["match"]
            left, op, right = _left(match["left"]), match["op"], _value(match["right"])
            words.append(f"{left} {'' if op == '==' else op + ' '}{right}")
            negated = op == "!="
            if left == "ip saddr" and not negated:
                fields["source"] = right
            elif left == "oifname" and negated:
                fields["not_out"] = right
            elif left == "iifname" and negated:
                fields["not_in"] = right
            elif left.endswith(" dport") and op == "==":
                fields["proto"], fields["dport"] = left.split()[0], int(right)
        elif "dnat" in expr:
            action = "DNAT"
            target = expr["dnat"]
            fields["to"] = f"{target['addr']}:{target['port']}" if "port" in target else str(target["addr"])
            words.append(f"dnat to {fields['to']}")
        elif "masquerade" in expr:
            action = "MASQUERADE"
            words.append("masquerade")
        elif "counter" not in expr:
            name = next(iter(expr))
            words.append(name)
            action = action or name.upper()
    if entry.get("comment"):
        words.append(f'comment "{entry["comment"]}"')
    return NatRule(text=" ".join(words), chain=entry["chain"], action=action, **fields)


def nat_rules(netns: Netns, family: str = TABLE[0], table: str = TABLE[1]) -> list[NatRule]:
    """The rules of *table* in *netns* that NAT: DNAT and MASQUERADE."""
    found = [rule(item["rule"]) for item in listing(netns, family, table)["nftables"] if "rule" in item]
    return [r for r in found if r.action in ("DNAT", "MASQUERADE")]
