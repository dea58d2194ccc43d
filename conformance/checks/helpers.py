"""Small helpers shared by the checks: servers, networks with a subnet of the suite's, what a failure message
shows.  What a check asks one container is its Box's (conformance/lab/engines/box.py); what reaches what from
a namespace, its Netns's (conformance/lab/kernel/netns.py)."""

from __future__ import annotations

import os
import socket
from contextlib import ExitStack
from pathlib import Path

import docker

from conformance.lab.engines import firewall
from conformance.lab.engines.box import Box
from conformance.lab.engines.engine import bridge_of  # noqa: F401 - the checks take it from here
from conformance.lab.engines.probe import EXPOSED_PORT  # noqa: F401 - the checks take it from here
from conformance.lab.kernel.netns import ANSWER_S, SILENCE_S  # noqa: F401 - the checks take them from here
from conformance.lab.managed import Managed
from conformance.lab.wait import wait_for
from conformance.plugin import NotCheckable

HTTPD_PORT = 8080
PROBE_PAGE = "hello from the probe"


def httpd(port: int = HTTPD_PORT, bind: str = "", root: str = "/www") -> list[str]:
    """busybox httpd in the foreground; ``bind`` may restrict it to one address."""
    return ["httpd", "-f", "-p", f"{bind}:{port}" if bind else str(port), "-h", root]


def plain_address(peer: str) -> str:
    """'[::ffff:198.51.100.2]' as busybox httpd reports it -> '198.51.100.2'."""
    return peer.strip().strip("[]").removeprefix("::ffff:")


def host_end(engine_netns, box_netns, ifname: str = "eth0") -> tuple[str, dict]:
    """The engine-side end of a container's veth, as (name, netlink link)."""
    peer_index = box_netns.links()[ifname]["link"]
    links = engine_netns.links()
    found = next(((name, link) for name, link in links.items() if link["index"] == peer_index), None)
    if found is None:
        raise AssertionError(f"the peer of the container's {ifname} (index {peer_index}) is not in the engine's "
                             f"namespace, which holds {sorted(links)}")
    return found


def ipv4_of(netns, ifname: str = "eth0") -> list[str]:
    """The IPv4 addresses (CIDR) of one interface, read by netlink."""
    with netns.iproute() as ipr:
        index = ipr.link_lookup(ifname=ifname)
        return [f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr(family=socket.AF_INET, index=index[0])]


def subnet_network(scope, lab, suffix: str, gateway_index: int = 1, **kwargs):
    """A network with an explicit --subnet (and --gateway) from the suite's own range; (network, subnet, gateway)."""
    subnet = lab.free_subnet()
    gateway = str(subnet[gateway_index])
    pool = docker.types.IPAMPool(subnet=str(subnet), gateway=gateway)
    network = scope.network(suffix, ipam=docker.types.IPAMConfig(pool_configs=[pool]), **kwargs)
    return network, subnet, gateway


EMBEDDED_DNS = "127.0.0.11"  # the address of the engine's embedded resolver inside a container


def echo_blockers(netns) -> str:
    """What in *netns* keeps it from answering a ping, for a failure message: a sysctl, links down."""
    found = []
    if netns.sysctl("net/ipv4/icmp_echo_ignore_all") != "0":
        found.append("net.ipv4.icmp_echo_ignore_all=1")
    down = sorted(name for name, link in netns.links().items() if not link["flags"] & 1)
    if down:
        found.append(f"links down: {down}")
    return "; ".join(found) or "no sysctl ignoring echoes and every link up there"


def bridge_filters(netns) -> list[str]:
    """The ebtables rules of *netns*' bridge FORWARD chain (they act on bridged frames), for a failure message."""
    result = netns.run("ebtables", "-L", "FORWARD")
    return [line for line in result.stdout.splitlines() if line.startswith("-")] if result.returncode == 0 else []


IFF_UP = 0x1  # a link's "up" flag, as netlink reports it


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets process *pid* holds open."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def peer_via(lab, port: int) -> str:
    """The peer address the probe saw for a GET from the upstream namespace to the engine's *port*; a
    connection that fails or gets no answer is a failure naming the endpoint and the error."""
    try:
        return plain_address(lab.upstream.netns.http_get(lab.upstream.engine_addr, port, "/cgi-bin/peer"))
    except OSError as exc:  # refused, reset, timed out, unreachable; ConnectionError is one too
        raise AssertionError(f"GET {lab.upstream.engine_addr}:{port} from upstream ({lab.upstream.upstream_addr}) "
                             f"failed: {exc!r}") from None


class Serving(Managed):
    """busybox httpd on *port* in a running *box*, started by an exec: httpd binds, then forks into the
    background, so the exec's result (``started``) says whether it got the port (exit 0) or why not.  A server
    that started is stopped on exit, by its exact command line (busybox has no pkill; where the box sees the
    host's processes, only it matches), and waited for until the port is free again."""

    def __init__(self, box: Box, port: int):
        self.box, self.port = box, port
        self.argv = ["httpd", "-p", str(port), "-h", "/www"]

    def _setup(self, stack: ExitStack) -> None:
        self.started = self.box.exec(*self.argv)
        if self.started.exit_code == 0:
            stack.callback(self._stop)

    def _stop(self) -> None:
        self.box.sh("for p in $(pidof httpd); do "
                    f"""[ "$(tr '\\0' ' ' < /proc/$p/cmdline)" = "{' '.join(self.argv)} " ] && kill "$p"; done""")
        netns = self.box.netns
        wait_for(lambda: self.port not in netns.listening_tcp_ports(), f"httpd on port {self.port} to stop",
                 timeout=5)


def dnat_covering(found, port: int) -> list:
    """The DNAT rules (firewall.NatRule) that rewrite TCP to host *port*: those that name it, and those that name
    no port at all (a catch-all DNAT rewrites every port, *port* included)."""
    return [r for r in found if r.action == "DNAT" and r.proto in ("tcp", None) and r.dport in (port, None)]


def rules_seen(engine, host_port: int, target: str) -> list:
    """The control of a check that asserts an absence of DNAT: the engine's rule reader (the backend it reports,
    the iptables variant on its PATH) must show the DNAT rule of a published binding, host *host_port* to
    *target* ("ADDRESS:PORT"), which must be there.  Returns the rules read; raises NotCheckable naming the backend
    read and what it showed when that rule is not among them.  An engine told --iptables=false writes no rules
    and has none to see: then the rules read are returned as they are (none)."""
    found = engine.nat_rules()
    if not engine.options["iptables"]:
        return found
    if not any(r.to == target for r in firewall.dnat_for(found, host_port)):
        dnat = [r.text for r in found if r.action == "DNAT"]
        raise NotCheckable(
            f"control: the {engine.firewall_backend} rules read (iptables variant {engine.iptables_variant}) do "
            f"not show the DNAT rule of a published binding (host port {host_port} to {target}); DNAT rules "
            f"read: {dnat or 'none'}, {len(found)} NAT rules in all: an absence of DNAT cannot be shown")
    return found


def dnat_address(to: str | None) -> str | None:
    """The address a DNAT rule's target names, with or without a port: "172.17.0.2:80", "172.17.0.2",
    "[fd00::2]:80" -> the address."""
    if not to:
        return None
    if to.startswith("["):
        return to[1:].partition("]")[0]
    return to.rpartition(":")[0] if to.count(":") == 1 else to


def server_end(netns, client: tuple[str, int]) -> list[tuple[str, int]]:
    """The local (address, port) of each established TCP socket in *netns* whose peer is *client*: where a
    connection arrived after whatever NAT rewrote its destination."""
    return [tuple(c["local"]) for c in netns.tcp_sockets() if tuple(c["remote"]) == tuple(client)]

# The device each tunnel module makes, down, in every new network namespace while
# net.core.fb_tunnels_only_for_init_net is 0 (the default): ipip's tunl0, sit's sit0, ip_gre's gre0, gretap0 and
# erspan0, ... (Documentation/admin-guide/sysctl/net.rst).  Calico and many Kubernetes nodes load them.
FALLBACK_TUNNELS = ("tunl0", "sit0", "gre0", "gretap0", "erspan0", "ip_vti0", "ip6_vti0", "ip6tnl0", "ip6gre0")
FB_TUNNELS_SYSCTL = "net.core.fb_tunnels_only_for_init_net"


def fallback_tunnels(links: dict[str, dict]) -> list[str]:
    """The links of *links* (Netns.links) that are a tunnel module's fallback device, down as the kernel makes
    them: on a host with those modules loaded every new namespace holds them, whoever made the namespace."""
    return sorted(name for name, link in links.items() if name in FALLBACK_TUNNELS and not link["flags"] & IFF_UP)


def made_links(links: dict[str, dict]) -> list[str]:
    """The names of *links* without the kernel's down fallback tunnel devices: what the namespace's maker put
    there, for a check that asserts an exact list."""
    ignored = fallback_tunnels(links)
    return sorted(name for name in links if name not in ignored)


def fallback_note(links: dict[str, dict]) -> str:
    """For a failure message and the evidence: which fallback tunnel devices were ignored, and why."""
    ignored = fallback_tunnels(links)
    if not ignored:
        return f"no fallback tunnel device (none of {', '.join(FALLBACK_TUNNELS)} down) to ignore"
    try:
        setting = Path("/proc/sys/net/core/fb_tunnels_only_for_init_net").read_text().strip()
    except OSError:
        setting = "unreadable"
    return (f"ignored the tunnel modules' down fallback devices {ignored}, which the kernel makes in every new "
            f"namespace while {FB_TUNNELS_SYSCTL}={setting} (0 is the default; 1 or 2 keeps them out)")
