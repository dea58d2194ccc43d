"""The egress guard: evidence that no packet of the suite left the machine.

For as long as a lab stands, two captures run in the engine's namespace, each
with a kernel (BPF) filter so that the host's own traffic costs nothing:

- on every *uplink* (an interface that is not loopback, not a bridge or veth,
  and not made by a run of the suite: what leads off the machine), any IPv4
  packet from or to the run's own networks (its upstream slot and the subnets
  it hands out; not whole documentation ranges, which a host may use);
- on all interfaces, IPv4 packets to anywhere but the suite's ranges, the
  engine's own addresses and the default bridge's subnet, kept when they enter
  the engine's namespace through the host end of a veth of one of the suite's
  containers (before NAT hides them behind the host's address: an address is
  reused by the next container, a veth is not) and go to no network a
  container of the suite is on.

Any packet either capture keeps is a leak: the run fails, and the packets are
written to the report as a pcap.
"""

from __future__ import annotations

import ipaddress
import re
from contextlib import ExitStack

from scapy.layers.inet import IP

from ..kernel.capture import Capture, pcap_bytes
from ..kernel.netns import Netns
from ..kernel.subnets import CHECK_RANGE
from ..managed import Managed
from .identity import PREFIX

OURS = re.compile(rf"^{PREFIX}[0-9a-f]{{6}}")
PLUMBING = ("bridge", "veth")
IFF_UP = 0x1
LINK_LOCAL = ("224.0.0.0/4", "255.255.255.255/32")  # multicast and broadcast never leave the segment


def uplinks(netns: Netns) -> list[str]:
    """The uplinks of *netns* that are up (a down one carries nothing, and cannot be captured)."""
    return sorted(name for name, link in netns.links().items()
                  if name != "lo" and link["kind"] not in PLUMBING and not OURS.match(name) and link["flags"] & IFF_UP)


def _nets(nets, direction: str = "") -> str:
    """A pcap filter for any of *nets*, as source or destination (or *direction*: "src", "dst")."""
    return " or ".join(f"{direction} net {net}".strip() for net in nets)


class Guard(Managed):
    """``with Guard(engine.netns, bridge_subnet) as guard: guard.watch(container_netns); ...; guard.leaks()``"""

    def __init__(self, netns: Netns, bridge_subnet: str | None, nets: list[ipaddress.IPv4Network]):
        """*nets*: the run's own networks (its upstream slot; the lab adds each subnet it hands out).  Only
        those are the suite's: the documentation ranges they come from may carry the host's own traffic."""
        self.netns = netns
        self.bridge_subnet = bridge_subnet
        self.nets = list(nets)
        self.uplinks = uplinks(netns)
        self.containers: set[str] = set()
        self.ends: set[str] = set()  # the host ends of the suite's containers' veths
        self.networks: set[ipaddress.IPv4Network] = set()
        self._captures: list[Capture] = []
        self._from_containers: Capture | None = None

    def _setup(self, stack: ExitStack) -> None:
        # The checks' subnets are handed out later, all from CHECK_RANGE: the kernel passes that range,
        # and leaks() keeps what is from or to one of the run's own networks.  Closing the stack closes every
        # capture, also when one fails to close, then raises.
        for name in self.uplinks:
            self._captures.append(stack.enter_context(Capture(self.netns, name, _nets([CHECK_RANGE, *self.nets]))))
        local = [f"{a.split('/')[0]}/32" for a in self.netns.addresses() if ":" not in a]
        exempt = [CHECK_RANGE, *self.nets, *local, *LINK_LOCAL, *([self.bridge_subnet] if self.bridge_subnet else [])]
        # The kernel drops what goes to exempt places; of the rest only what a container of the suite's
        # sent is kept, so the host's own traffic costs a Python call a packet and no memory.
        self._from_containers = stack.enter_context(Capture(self.netns, None, f"not ({_nets(exempt, 'dst')})",
                                                            keep=lambda frame, ifname: ifname in self.ends))
        self._captures.append(self._from_containers)

    def watch(self, container_netns: Netns) -> None:
        """Count what a container of the suite sends as the suite's, found by the host end of each of its
        veths; a leak when it goes anywhere but a network of the suite's containers.  A host-mode container
        is not watched: what it sends is the host's, as the article says."""
        if container_netns.inode == self.netns.inode:
            return
        veths = [link for link in container_netns.links().values() if link["kind"] == "veth" and link["link"]]
        if not veths:
            return
        with container_netns.iproute() as ipr:
            addresses = [(a["index"], a.get("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(family=2)]
        peers = self.netns.links(*{link["link"] for link in veths})  # just those: a busy host has many links
        ends = {link["index"]: name for name, link in peers.items() if link["kind"] == "veth"}
        for link in veths:
            if link["link"] in ends:
                self.ends.add(ends[link["link"]])
                for index, address, prefixlen in addresses:
                    if index == link["index"]:
                        self.containers.add(address)
                        self.networks.add(ipaddress.IPv4Interface(f"{address}/{prefixlen}").network)

    def _off_network(self, packet) -> bool:
        source, destination = packet[IP].src, ipaddress.ip_address(packet[IP].dst)
        return source in self.containers and not any(destination in net for net in self.networks)

    def _ours(self, packet) -> bool:
        ends = (ipaddress.ip_address(packet[IP].src), ipaddress.ip_address(packet[IP].dst))
        return any(address in net for address in ends for net in self.nets)

    def leaks(self) -> list:
        found = [p for c in self._captures if c is not self._from_containers for p in c.packets(self._ours)]
        if self._from_containers is not None:
            found += self._from_containers.packets(self._off_network)
        return found

    def pcap(self) -> bytes:
        """The leaked packets as a pcap file's bytes; the report's writer puts them where it writes (the lab writes no
        report file itself)."""
        return pcap_bytes(self.leaks())

    def describe(self) -> dict:
        leaks = self.leaks()
        return {"uplinks": self.uplinks, "containers_watched": len(self.containers), "leaks": len(leaks),
                "packets": [p.summary() for p in leaks[:20]]}
