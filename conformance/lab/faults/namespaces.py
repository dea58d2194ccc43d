"""Faults of every new namespace: each namespace a check creates (conftest's ``namespaces``) changed as it is
made, as a distribution's hook, sysctl default or namespace manager would, for the claims that need no engine.
"""

from __future__ import annotations

import ctypes
import os

from ..engines.lab import Target
from ..kernel.netns import Netns
from .fault import Fault


def _lo_up(netns: Netns) -> None:
    netns.up("lo")


def _icmp_ignored(netns: Netns) -> None:
    netns.sysctl("net/ipv4/icmp_echo_ignore_all", "1")


def _bridge_filtered(netns: Netns) -> None:
    result = netns.run("ebtables", "-A", "FORWARD", "-j", "DROP")
    if result.returncode != 0:
        raise OSError(f"ebtables in {netns}: {result.stderr.strip()}")


MNT_DETACH = 2  # umount2(2): detach now, unmount once unused


def _netns_unmounted(netns: Netns) -> None:
    """The namespace's bind mount taken away (umount2(2), lazily), leaving its empty file under /run/netns."""
    if ctypes.CDLL(None, use_errno=True).umount2(netns.path.encode(), MNT_DETACH) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"umount {netns.path}: {os.strerror(error)}")


def _netns_extra_link(netns: Netns) -> None:
    with netns.iproute() as ipr:
        ipr.link("add", ifname="cf-extra0", kind="bridge")


FAULTS = (
    Fault("netns-lo-up", "lo brought up in every new namespace, as a distribution hook might",
          target=Target.NAMESPACES, on_namespace=_lo_up),
    Fault("netns-icmp-ignored", "net.ipv4.icmp_echo_ignore_all=1 in every new namespace: no echo is answered",
          target=Target.NAMESPACES, on_namespace=_icmp_ignored),
    Fault("netns-bridge-filtered", "`ebtables -A FORWARD -j DROP` in every new namespace: its bridges forward "
          "nothing", target=Target.NAMESPACES, on_namespace=_bridge_filtered),
    Fault("netns-unmounted", "the bind mount of every new named namespace removed, as a namespace manager that "
          "unmounts and forgets to unlink would: its file under /run/netns stays, naming no namespace",
          target=Target.NAMESPACES, on_namespace=_netns_unmounted),
    Fault("netns-extra-link", "a bridge cf-extra0 added to every new namespace, as a distribution's "
          "hook might", target=Target.NAMESPACES, on_namespace=_netns_extra_link),
)
