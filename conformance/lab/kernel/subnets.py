"""Address space the suite may use: ranges no real network routes, checked free before use.

The upstream link and remote come from the RFC 5737 documentation ranges
(upstream.py); the networks the checks create come from 198.18.0.0/15, which
RFC 2544 sets aside for benchmarking and no real network routes.  A subnet is
taken only when it overlaps no route or address in the engine's namespace and
no network the engine already has, and it is held (reserve.py) so that no
other run on the host takes it too.
"""

from __future__ import annotations

import ipaddress

import docker

from ..safety.reserve import Reservations, from_random_start
from .netns import Netns

CHECK_RANGE = ipaddress.IPv4Network("198.18.0.0/15")


def occupied(netns: Netns) -> list[ipaddress.IPv4Network]:
    """Every IPv4 route destination and interface subnet in *netns*."""
    with netns.iproute() as ipr:
        nets = [
            ipaddress.IPv4Network(f"{r.get('RTA_DST')}/{r['dst_len']}", strict=False)
            for r in ipr.get_routes(family=2, table=254)
            if r.get("RTA_DST")
        ]
        nets += [
            ipaddress.IPv4Network(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}", strict=False)
            for a in ipr.get_addr(family=2)
        ]
    return nets


def engine_subnets(client: docker.DockerClient) -> list[ipaddress.IPv4Network]:
    """The IPv4 subnets of every network the engine has."""
    nets = []
    for network in client.api.networks():
        for config in (network.get("IPAM") or {}).get("Config") or []:
            subnet = config.get("Subnet", "")
            if subnet and ":" not in subnet:
                nets.append(ipaddress.IPv4Network(subnet, strict=False))
    return nets


def free_subnet(netns: Netns, client: docker.DockerClient, reservations: Reservations,
                prefix: int = 24) -> ipaddress.IPv4Network:
    """A /*prefix* of CHECK_RANGE that nothing in the engine's namespace or the engine uses, held by this run."""
    taken = occupied(netns) + engine_subnets(client)
    candidates = from_random_start(list(CHECK_RANGE.subnets(new_prefix=prefix)))
    found = reservations.first_free(f"subnet-{netns.inode}", candidates,
                                    lambda subnet: not any(subnet.overlaps(t) for t in taken))
    if found is None:
        raise RuntimeError(f"no free /{prefix} left in {CHECK_RANGE}")
    return found
