"""The machine the suite runs on: what report.json says about it, and the facts claims may depend on."""

from __future__ import annotations

import ipaddress
import platform
import socket
from pathlib import Path
from typing import Any

RESOLV_CONF = Path("/etc/resolv.conf")


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
    nameservers = resolv_conf()["nameserver"]
    return {
        "kernel": platform.release(),
        # Docker copies the host's resolvers only when one of them is reachable from a container.
        "host_resolvers_copyable": any(not is_loopback(n) for n in nameservers),
    }
