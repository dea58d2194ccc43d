"""Two hosts on one machine: two private engines joined by a segment of the suite's, for the claims across hosts.

    segment netns cf<id>-seg: bridge cf<id>s0, ports cf<id>sa and cf<id>sb, nothing else (no way off the machine)
    host A: private engine cf<id>-hosta          host B: private engine cf<id>-hostb
      eth0 N.1/26 (peer cf<id>sa)                  eth0 N.2/26 (peer cf<id>sb)
      swarm manager, listening on N.1:2377         swarm worker, joined to N.1:2377
      resolver on N.1:53 for its containers        resolver on N.2:53

    N: one /24 of 198.18.0.0/15 held for the run (reserve.py): .0/26 the segment, .64/26 macvlan (host A
    hands out .64/27, host B .96/27, as two engines' IPAMs must be told), .128/26 the overlay network,
    .192/26 the swarm's address pool (its ingress network).

Each host is a private engine like any other (private.py), started from the same dockerd as the suite's
others, with the segment's end as its eth0: to the engines, and to the packets, these are two machines on
one LAN.  The swarm is formed between these two engines only, and its state lives in their data-roots,
which carry the run id like everything else here (sweep.py finds them by it after a crash).

Swarm needs of the kernel only what any private engine does, plus VXLAN for the overlay; containers
attached to an attachable overlay need no IPVS (a kernel without CONFIG_IP_VS, like the development VM's,
only lacks swarm services' virtual IPs and the ingress routing mesh, which no claim is about; dockerd logs
that it cannot read net.ipv4.vs.* and carries on).

The run's fault, when its target is this lab (Target.TWO_HOSTS; lab/faults/hosts.py), breaks it in one place:
a swarm option, or once the lab stands a rule on one host or the segment's port security.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import TYPE_CHECKING, NamedTuple

import docker

from ..kernel.capture import Capture, pcap_bytes
from ..kernel.netns import NamedNetns, Netns
from ..kernel.subnets import CHECK_RANGE, engine_subnets, occupied
from ..managed import Managed
from ..safety.identity import Run
from ..safety.reserve import Reservations, from_random_start
from ..world.resolver import PROBE_NAME, Resolver
from . import firewall
from .engine import Engine
from .lab import EngineLab, Target

if TYPE_CHECKING:  # the faults import this module (lab/faults/hosts.py acts on a TwoHosts): it names only their type
    from ..faults.fault import Fault

SEGMENT_IF = "eth0"  # each host's end of the segment: its one NIC, the macvlan parent
VXLAN_PORT = 4789  # the swarm's default data-path port
MULTICAST = ("224.0.0.0/4", "255.255.255.255/32")


class Block(NamedTuple):
    """The run's /24 and its four /26s, as the module docstring draws them."""

    net: ipaddress.IPv4Network
    segment: ipaddress.IPv4Network
    macvlan: ipaddress.IPv4Network
    overlay: ipaddress.IPv4Network
    swarm_pool: ipaddress.IPv4Network

    @classmethod
    def of(cls, net: ipaddress.IPv4Network) -> Block:
        return cls(net, *net.subnets(new_prefix=26))

    def macvlan_range(self, host: int) -> ipaddress.IPv4Network:
        """The half of the macvlan subnet host *host* (0: A, 1: B) hands out."""
        return list(self.macvlan.subnets(new_prefix=27))[host]


def free_block(reservations: Reservations) -> Block:
    """A /24 of CHECK_RANGE no route of the suite's own namespace uses, held host-wide against other runs."""
    taken = occupied(Netns("/proc/self/ns/net"))
    found = reservations.first_free("hosts-block", from_random_start(list(CHECK_RANGE.subnets(new_prefix=24))),
                                    lambda net: not any(net.overlaps(t) for t in taken))
    if found is None:
        raise RuntimeError(f"no free /24 left in {CHECK_RANGE} for the two-host lab")
    return Block.of(found)


class Segment(Managed):
    """A bridge in a namespace of its own: the LAN between the hosts, and where the captures listen."""

    def __init__(self, run: Run):
        self.run = run
        self.netns = NamedNetns(run.name("seg"))
        self.bridge = run.ifname("s0")

    def _setup(self, stack: ExitStack) -> None:
        stack.enter_context(self.netns)
        with self.netns.iproute() as ipr:
            ipr.link("add", ifname=self.bridge, kind="bridge")
        self.netns.up(self.bridge)

    def plug(self, port: str, host_netns: Netns, address: str) -> None:
        """A veth from a bridge port *port* to *host_netns*, where its end is SEGMENT_IF with *address*.
        Made in the host's namespace, where SEGMENT_IF is unique (two hosts are plugged in at once)."""
        host_netns.add_veth(SEGMENT_IF, port, peer_netns=self.netns)
        self.netns.up(port, master=self.bridge)
        host_netns.up(SEGMENT_IF, address)

    def capture(self, port: str | None = None, ipv4_filter: str | None = None) -> Capture:
        """Frames crossing the segment: on one host's port (everything it sends and receives), or on all."""
        return Capture(self.netns, port, ipv4_filter)


class Host(EngineLab):
    """One host: a private engine whose eth0 is on the segment, a lab of the one shape (lab.py), so a
    Scope serves it unchanged."""

    def __init__(self, run: Run, name: str, segment: Segment, address: str, prefixlen: int,
                 dockerd: str | None = None):
        super().__init__(run, dockerd)
        self.name = name
        self.segment = segment
        self.address = address
        self.prefixlen = prefixlen
        self.port = run.ifname(f"s{name}")
        self.role = f"host {name.upper()} of the two-host lab"

    def _wire(self, netns: Netns) -> None:
        self.segment.plug(self.port, netns, f"{self.address}/{self.prefixlen}")

    def _start_engine(self, stack: ExitStack) -> Engine:
        return self._private(stack, f"host{self.name}", prepare=self._wire)

    def _resolver(self, stack: ExitStack) -> Resolver:
        """Each host's own resolver, on its segment address."""
        return Resolver(self.engine.netns, self.address, {PROBE_NAME: self.address})

    @property
    def netns(self) -> Netns:
        return self.engine.netns

    @property
    def mac(self) -> str:
        return self.netns.links()[SEGMENT_IF]["address"]

    def iptables(self, table: str, action: str, rule: str) -> None:
        firewall.change(self.netns, self.engine.iptables_variant, table, action, rule)


class TwoHosts(Managed):
    """``with TwoHosts(run) as hosts: hosts.a, hosts.b, hosts.segment, hosts.block, hosts.overlay``"""

    def __init__(self, run: Run, fault: Fault | None = None, dockerd: str | None = None):
        self.run = run
        self.fault = fault if fault is not None and fault.target is Target.TWO_HOSTS else None  # the run's, if ours
        self.dockerd = dockerd
        self.reservations = Reservations()

    def _setup(self, stack: ExitStack) -> None:
        stack.callback(self.reservations.release_all)
        self.block = free_block(self.reservations)
        self.segment = stack.enter_context(Segment(self.run))
        addresses = self.block.segment
        self.a, self.b = (Host(self.run, name, self.segment, str(addresses[i]), addresses.prefixlen, self.dockerd)
                          for i, name in ((1, "a"), (2, "b")))
        stack.enter_context(_Together(self.a, self.b))
        self._swarm(**(self.fault.swarm if self.fault else {}))
        self.overlay = self._overlay()
        self.guard = stack.enter_context(SegmentGuard(self.segment, [
            self.block.net, *(net for host in (self.a, self.b) for net in engine_subnets(host.engine.client))]))
        if self.fault is not None and self.fault.on_two_hosts is not None:
            self.fault.on_two_hosts(self)

    def _swarm(self, **options) -> None:
        """Host A initialises a swarm on its segment address, host B joins it as a worker.  The swarm's
        state lives in their data-roots, so it ends with them (leaving first would only cost time)."""
        manager, worker = self.a.engine.client, self.b.engine.client
        manager.swarm.init(advertise_addr=self.a.address, listen_addr=f"{self.a.address}:2377",
                           data_path_addr=self.a.address, default_addr_pool=[str(self.block.swarm_pool)],
                           subnet_size=self.block.swarm_pool.prefixlen, labels=self.run.labels, **options)
        token = manager.swarm.attrs["JoinTokens"]["Worker"]
        worker.swarm.join(remote_addrs=[f"{self.a.address}:2377"], join_token=token,
                          advertise_addr=self.b.address, listen_addr=f"{self.b.address}:2377",
                          data_path_addr=self.b.address)

    def _overlay(self) -> str:
        """The attachable overlay network, created on the manager; its name."""
        name = self.run.name("overlay")
        pool = docker.types.IPAMPool(subnet=str(self.block.overlay))
        self.a.engine.client.networks.create(name, driver="overlay", attachable=True, labels=self.run.labels,
                                             ipam=docker.types.IPAMConfig(pool_configs=[pool]))
        return name

    def swarm_info(self) -> dict:
        return {host.name: host.engine.client.info().get("Swarm", {}) for host in (self.a, self.b)}

    def run_info(self) -> dict:
        return {"segment": str(self.block.segment), "hosts": {h.name: h.address for h in (self.a, self.b)},
                "engine_version": self.a.engine.version.get("Version", ""),
                "fault": self.fault.name if self.fault else None}


class _Together(Managed):
    """Hosts entered at once, and exited at once: those that started are stopped also when another failed."""

    def __init__(self, *hosts: Host):
        self.hosts = hosts

    def _setup(self, stack: ExitStack) -> None:
        with ThreadPoolExecutor(max_workers=len(self.hosts)) as pool:
            futures = [pool.submit(host.__enter__) for host in self.hosts]
        stack.callback(_in_parallel, [host.__exit__ for host, future in zip(self.hosts, futures, strict=True)
                                      if future.exception() is None])
        for future in futures:
            future.result()


def _in_parallel(calls: list[Callable[..., object]]) -> None:
    """Call each of *calls* (with no arguments) at once; the first error raised once all have returned."""
    with ThreadPoolExecutor(max_workers=max(len(calls), 1)) as pool:
        for future in [pool.submit(call) for call in calls]:
            future.result()


class SegmentGuard(Managed):
    """The egress guard's watch on the segment: any IPv4 packet on it to an address outside the lab's
    networks (the run's /24 and the networks of the two engines; multicast aside) is headed off the machine,
    which on a real LAN it would have left.  Same report as guard.Guard's (``describe()``, ``write()``),
    merged into the run's egress_guard."""

    def __init__(self, segment: Segment, nets: list[ipaddress.IPv4Network]):
        exempt = " or ".join(f"dst net {net}" for net in (*nets, *MULTICAST))
        self.name = f"{segment.bridge} (segment)"
        self._capture = segment.capture(None, f"not ({exempt})")

    def _setup(self, stack: ExitStack) -> None:
        stack.enter_context(self._capture)

    def leaks(self) -> list:
        return self._capture.packets()

    def pcap(self) -> bytes:
        """The leaked packets as a pcap file's bytes; the report's writer puts them where it writes (the lab writes no
        report file itself)."""
        return pcap_bytes(self.leaks())

    def describe(self) -> dict:
        leaks = self.leaks()
        return {"uplinks": [self.name], "leaks": len(leaks), "packets": [p.summary() for p in leaks[:20]]}
