"""The engine's packet-filter rules, read with the same iptables variant the daemon uses.

The articles quote rules in iptables-save syntax (``-A POSTROUTING -s ... -j
MASQUERADE``), so the dump of that syntax is the configuration evidence; no
Python library reads both the nf_tables and the legacy backend.  The variant is
the one the ``iptables`` on the daemon's own PATH is, which also honours a
per-daemon shim; it is read, never run (a daemon's PATH is not root's to choose
from), and nothing is loaded or changed to find it.  What the suite runs is
root's ``iptables-nft`` or ``iptables-legacy`` from a fixed PATH
(safety/trust.py's ``root_tool``).

A NAT rule is also read into a ``NatRule``, the same for every backend: an
iptables-save line here, or an nftables rule (``nftables.py``) for an engine
whose firewall backend is nftables; the configuration claims ask those.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..kernel.netns import Netns
from ..kernel.procs import environment
from ..safety.trust import root_tool

VARIANTS = {"nf_tables": "iptables-nft", "legacy": "iptables-legacy"}
# The names iptables' programs go by, for each variant (iptables 1.8's xtables-*-multi and their links).
NAMED = {"iptables-nft": "nf_tables", "xtables-nft-multi": "nf_tables",
         "iptables-legacy": "legacy", "xtables-legacy-multi": "legacy"}
# The program a shell-script shim ends by running: ``exec /usr/sbin/iptables-legacy "$@"``.
SHIM_EXEC = re.compile(r"^\s*exec\s+(/\S+)", re.MULTILINE)
SHIM_MAX = 65536  # a wrapper script is small; anything larger is not read
MAX_HOPS = 8  # links and shims followed before giving up


def daemon_variant(pid: int) -> str | None:
    """'nf_tables' or 'legacy': which iptables the daemon *pid* runs, read from what ``iptables`` on its PATH
    is (variant_of); None when it has none, or one the suite cannot tell."""
    path = ":".join(d for d in environment(pid).get("PATH", os.defpath).split(":") if os.path.isabs(d))
    binary = shutil.which("iptables", path=path)
    return variant_of(Path(binary)) if binary else None


def variant_of(binary: Path) -> str | None:
    """'nf_tables' or 'legacy': the variant *binary* is, read without running it.  Each name on the way
    counts: the symlinks it leads through (``iptables`` -> ``/etc/alternatives/iptables`` ->
    ``iptables-nft`` -> ``xtables-nft-multi``), and for a shell-script shim, the program it execs last (the
    suite's own variants put one first on a private daemon's PATH).  None when no name tells."""
    current = binary
    for _ in range(MAX_HOPS):
        if current.name in NAMED:
            return NAMED[current.name]
        try:
            found = os.lstat(current)
            if stat.S_ISLNK(found.st_mode):
                current = current.parent / os.readlink(current)
                continue
            if not stat.S_ISREG(found.st_mode) or found.st_size > SHIM_MAX:
                return None  # a device or FIFO would block the read; a large file is a program, not a shim
            with open(current, "rb") as file:
                head = file.read(SHIM_MAX)
        except OSError:
            return None
        programs = SHIM_EXEC.findall(head.decode(errors="replace")) if head.startswith(b"#!") else []
        if not programs:
            return None
        current = Path(programs[-1])
    return None


def variant_on_path() -> str | None:
    """'nf_tables' or 'legacy': what root's ``iptables`` (trust.ROOT_PATH) says it is; None without one."""
    try:
        binary = root_tool("iptables")
    except FileNotFoundError:
        return None
    result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=False)
    found = re.search(r"\((nf_tables|legacy)\)", result.stdout)
    return found.group(1) if found else None


def save(netns: Netns, variant: str, table: str) -> str:
    """The iptables-save dump of one table in *netns*, by root's iptables of *variant*."""
    result = netns.run(root_tool(f"{VARIANTS[variant]}-save"), "-t", table)
    if result.returncode != 0:
        raise RuntimeError(f"{VARIANTS[variant]}-save -t {table} failed: {result.stderr.strip()}")
    return result.stdout


def change(netns: Netns, variant: str | None, table: str, action: str, rule: str) -> None:
    """Apply *action* (-A, -I, -D) to *rule* ("INPUT -s 192.0.2.9 -j DROP") in *netns*, with the iptables
    *variant* the engine there uses (None: it has none).

    Only ever in a namespace the suite made: a check's own, or a private engine's.
    """
    if variant is None:
        raise RuntimeError(f"no iptables on the engine's PATH in {netns}: cannot {action} {rule}")
    result = netns.run(root_tool(VARIANTS[variant]), "-t", table, action, *shlex.split(rule))
    if result.returncode != 0:
        raise RuntimeError(f"{VARIANTS[variant]} -t {table} {action} {rule} failed: {result.stderr.strip()}")


def rules(dump: str) -> list[str]:
    """The ``-A`` lines of a dump, the form the articles quote."""
    return [line for line in dump.splitlines() if line.startswith("-A ")]


def value(rule: str, flag: str) -> str | None:
    """The argument that follows *flag* in one rule line, e.g. value(rule, "--dport") -> "8080"."""
    tokens = shlex.split(rule)
    return next((tokens[i + 1] for i, t in enumerate(tokens[:-1]) if t == flag), None)


@dataclass(frozen=True)
class NatRule:
    """What a NAT rule says, whichever backend holds it: ``text`` as the backend shows it, the chain, the
    action (DNAT, MASQUERADE, ...), and the matches the articles' rules use."""

    text: str
    chain: str
    action: str
    source: str | None = None  # -s / ip saddr
    not_out: str | None = None  # ! -o / oifname !=
    not_in: str | None = None  # ! -i / iifname !=
    proto: str | None = None
    dport: int | None = None
    to: str | None = None  # --to-destination / dnat to


def nat_rule(line: str) -> NatRule:
    """One iptables-save ``-A`` line of the nat table as a NatRule."""
    tokens = shlex.split(line)
    negated: set[str] = set()
    for i, token in enumerate(tokens[:-1]):
        if token == "!":
            negated.add(tokens[i + 1])
    dport = value(line, "--dport")
    return NatRule(text=line, chain=tokens[1], action=value(line, "-j") or "",
                   source=value(line, "-s") if "-s" not in negated else None,
                   not_out=value(line, "-o") if "-o" in negated else None,
                   not_in=value(line, "-i") if "-i" in negated else None,
                   proto=value(line, "-p"), dport=int(dport) if dport else None, to=value(line, "--to-destination"))


def nat_rules(dump: str) -> list[NatRule]:
    """The rules of an iptables-save nat dump."""
    return [nat_rule(line) for line in rules(dump)]


def dnat_for(found: list[NatRule], port: int) -> list[NatRule]:
    """The rules that DNAT TCP traffic for host *port*."""
    return [r for r in found if r.action == "DNAT" and r.dport == port and r.proto in ("tcp", None)]


def masquerades(found: list[NatRule], subnet: str, bridge: str) -> list[NatRule]:
    """The rules that masquerade *subnet* leaving by any interface but *bridge*: the articles'
    ``-A POSTROUTING -s SUBNET ! -o BRIDGE -j MASQUERADE``."""
    return [r for r in found if r.action == "MASQUERADE" and r.source == subnet and r.not_out == bridge]
