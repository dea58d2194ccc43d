"""The machine the suite runs on: what report.json says about it, and the facts claims may depend on."""

from __future__ import annotations

import ipaddress
import platform
import socket
from pathlib import Path
from typing import Any

RESOLV_CONF = Path("/etc/resolv.conf")
# systemd-resolved's stub resolver, and the file it writes with the servers it forwards to
SYSTEMD_RESOLVED_STUB = "127.0.0.53"
SYSTEMD_RESOLV_CONF = Path("/run/systemd/resolve/resolv.conf")
# What Docker gives a container when no host nameserver is left for it (moby libnetwork resolvconf:
# TransformForLegacyNw, defaultNSAddrs): Google's, IPv6 ones only for a container with IPv6
DOCKER_FALLBACK_IPV4 = ["8.8.8.8", "8.8.4.4"]
DOCKER_FALLBACK_IPV6 = ["2001:4860:4860::8888", "2001:4860:4860::8844"]


def parse_resolv_conf(text: str) -> dict[str, list[str]]:
    """The nameserver and search entries of a resolv.conf, in order."""
    found: dict[str, list[str]] = {"nameserver": [], "search": []}
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) > 1 and words[0] in found:
            found[words[0]].extend(words[1:])
    return found


def resolv_conf(path: Path = RESOLV_CONF) -> dict[str, list[str]]:
    """The host's own resolv.conf, parsed; empty when it cannot be read."""
    try:
        return parse_resolv_conf(path.read_text(errors="replace"))
    except OSError:
        return parse_resolv_conf("")


def engine_resolv_conf(configured: str | None = None, root: Path = Path("/")) -> Path:
    """The resolv.conf Docker copies into containers (moby daemon_linux.go setupResolvConf, libnetwork's
    resolvconf.Path): the daemon's `resolv-conf` setting (daemon.json) if it has one; else /etc/resolv.conf,
    unless that names systemd-resolved's stub 127.0.0.53 as its only nameserver, which no container reaches:
    then the file systemd-resolved writes with the servers it forwards to, /run/systemd/resolve/resolv.conf.
    *root* is where the host's tree is (tests)."""
    if configured:
        return root / configured.lstrip("/")
    default = root / RESOLV_CONF.relative_to("/")
    if resolv_conf(default)["nameserver"] == [SYSTEMD_RESOLVED_STUB]:
        return root / SYSTEMD_RESOLV_CONF.relative_to("/")
    return default


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def host_info() -> dict[str, Any]:
    """The host part of report.json's run_info."""
    try:
        distro = platform.freedesktop_os_release().get("PRETTY_NAME", "")
    except OSError:  # neither /etc/os-release nor /usr/lib/os-release
        distro = ""
    uname = platform.uname()
    return {
        "hostname": socket.gethostname(),
        "kernel": uname.release,
        "kernel_version": uname.version,
        "machine": uname.machine,
        "distro": distro,
        "python": platform.python_version(),
    }


def host_facts() -> dict[str, Any]:
    """Facts about the host that need no engine: claims about raw namespaces depend only on these."""
    nameservers = resolv_conf(engine_resolv_conf())["nameserver"]
    return {
        "kernel": platform.release(),
        # Docker copies the host's resolvers only when one of them is reachable from a container: of the file
        # it reads, which on a systemd-resolved host is not /etc/resolv.conf.
        "host_resolvers_copyable": any(not is_loopback(n) for n in nameservers),
    }
