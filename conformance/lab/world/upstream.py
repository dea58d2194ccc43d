"""The outside world: a namespace joined to the engine's namespace by a veth.

    engine netns                              upstream netns
    cf<id>u0  198.51.100.(8s+1)/29  <---->  cf<id>u1  198.51.100.(8s+2)/29
    route 203.0.113.(16s)/28 via .2           lo: 203.0.113.(16s+1)  "a server on the internet"
                                              resolver on 203.0.113.(16s+1):53

Only documentation ranges (RFC 5737) are used, in a slot s that overlaps no
route or address already in the engine's namespace and that no other run
holds, so the suite's traffic has nowhere to go but namespaces it made.
Removing the veth removes the engine-side address and route with it.
"""

from __future__ import annotations

import ipaddress
from contextlib import ExitStack
from dataclasses import dataclass

from ..kernel.netns import NamedNetns, Netns
from ..kernel.subnets import occupied
from ..managed import Managed
from ..safety.identity import Run
from ..safety.reserve import Reservations

LINK_RANGE = ipaddress.IPv4Network("198.51.100.0/24")
REMOTE_RANGE = ipaddress.IPv4Network("203.0.113.0/24")


@dataclass(frozen=True)
class Slot:
    link: ipaddress.IPv4Network
    remote_net: ipaddress.IPv4Network

    def __str__(self) -> str:  # the name of its reservation
        return str(self.link)

    @property
    def engine_addr(self) -> str:
        return str(self.link[1])

    @property
    def upstream_addr(self) -> str:
        return str(self.link[2])

    @property
    def remote(self) -> str:
        return str(self.remote_net[1])


def free_slot(netns: Netns, reservations: Reservations) -> Slot:
    """A slot whose ranges overlap nothing in *netns*, held by this run."""
    taken = occupied(netns)
    slots = [Slot(link, remote) for link, remote in zip(LINK_RANGE.subnets(new_prefix=29),
                                                         REMOTE_RANGE.subnets(new_prefix=28), strict=False)]
    found = reservations.first_free(
        f"slot-{netns.inode}", slots,
        lambda slot: not any(slot.link.overlaps(t) or slot.remote_net.overlaps(t) for t in taken))
    if found is None:
        raise RuntimeError(f"no free documentation-range slot in {netns}: each overlaps a route or serves another run")
    return found


class Upstream(Managed):
    """``with Upstream(run, engine.netns, reservations) as up: up.engine_addr, up.remote, up.netns``"""

    def __init__(self, run: Run, engine_netns: Netns, reservations: Reservations):
        self.run = run
        self.engine_netns = engine_netns
        self.reservations = reservations
        self.netns = NamedNetns(run.name("up"))
        self.engine_if = run.ifname("u0")
        self.upstream_if = run.ifname("u1")

    slot: Slot  # held from __enter__ on

    @property
    def engine_addr(self) -> str:
        return self.slot.engine_addr

    @property
    def upstream_addr(self) -> str:
        return self.slot.upstream_addr

    @property
    def remote(self) -> str:
        return self.slot.remote

    def _setup(self, stack: ExitStack) -> None:
        self.slot = free_slot(self.engine_netns, self.reservations)
        stack.enter_context(self.netns)
        stack.callback(self.engine_netns.delete, self.engine_if)  # the veth, its address and route with it
        self._wire()

    def _wire(self) -> None:
        prefix = self.slot.link.prefixlen
        self.engine_netns.add_veth(self.engine_if, self.upstream_if, peer_netns=self.netns)
        self.engine_netns.up(self.engine_if, f"{self.engine_addr}/{prefix}")
        with self.engine_netns.iproute() as ipr:
            ipr.route("add", dst=str(self.slot.remote_net), gateway=self.upstream_addr,
                      oif=ipr.link_lookup(ifname=self.engine_if)[0])
        self.netns.up(self.upstream_if, f"{self.upstream_addr}/{prefix}")
        self.netns.up("lo", f"{self.remote}/32")
