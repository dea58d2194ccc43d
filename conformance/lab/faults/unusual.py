"""Unusual but healthy configurations: a private engine started the way a fault is (fault.py), on which every
behaviour claim must still pass; only claims about the documented defaults may be reported not applicable,
and a claim the configuration rightly makes fail on some engines is named in ``expected``.
"""

from __future__ import annotations

from ..kernel.netns import Netns
from .fault import Fault
from .wrapper import real


def _legacy_iptables() -> dict[str, str]:
    return {name: f'#!/bin/sh\nexec {real(f"{name}-legacy")} "$@"\n' for name in ("iptables", "ip6tables")}


def _forwarding_on(netns: Netns) -> None:
    """As on a host that routed before Docker started (a Kubernetes node, a router, a libvirt host)."""
    netns.sysctl("net/ipv4/ip_forward", "1")


CONFIGURATIONS = (
    Fault("custom-bip", "--bip=192.168.240.1/24 instead of 172.17.0.1/16", options=("--bip=192.168.240.1/24",)),
    Fault("address-pools", "default-address-pools base=10.123.0.0/16, size 24",
          options=("--default-address-pool=base=10.123.0.0/16,size=24",)),
    Fault("mtu-1400", "--mtu=1400", options=("--mtu=1400",)),
    Fault("iptables-legacy", "the iptables-legacy backend (on the daemon's PATH only)", tools=_legacy_iptables),
    Fault("userland-proxy-off", "--userland-proxy=false: hairpin NAT instead of docker-proxy",
          options=("--userland-proxy=false",)),
    Fault("ipv6", "--ipv6 --fixed-cidr-v6=fd00:cf::/64: the default bridge is dual-stack",
          options=("--ipv6", "--fixed-cidr-v6=fd00:cf::/64")),
    Fault("icc-off", "--icc=false (the CIS benchmark's advice): containers on the default bridge are isolated",
          options=("--icc=false",)),
    Fault("forwarded-before-start", "net.ipv4.ip_forward=1 before dockerd starts, as on a host that routed "
          "already: the daemon leaves the FORWARD policy ACCEPT", before_start=_forwarding_on,
          expected={"bridge/not-addressable-from-outside":
                    "FORWARD policy ACCEPT, and Docker before 28.0 adds no filter rule for routed access to a "
                    "container's unpublished ports (28.0 drops it in the DOCKER chain: moby c9fdeaf70e)"},
          expected_when={"engine_version": "<28"}),
)
