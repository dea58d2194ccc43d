"""Small helpers shared by the checks."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import docker
from pyroute2 import DiagSocket
from pyroute2.netlink.diag import SS_ESTABLISHED

from conformance.lab.engine import bridge_of  # noqa: F401 - the checks take it from here
from conformance.lab.host import parse_resolv_conf
from conformance.lab.netns import Netns
from conformance.lab.scope import ExecResult, listening_tcp_ports
from conformance.lab.wait import wait_for

HTTPD_PORT = 8080
# How long a probe waits for an answer that must not come: on one machine an answer takes well under a
# millisecond, so a second is ample, and a check that expects silence spends no more than that.
SILENCE_S = 1
PROBE_PAGE = "hello from the probe"


def httpd(port: int = HTTPD_PORT, bind: str = "", root: str = "/www") -> list[str]:
    """busybox httpd in the foreground; ``bind`` may restrict it to one address."""
    return ["httpd", "-f", "-p", f"{bind}:{port}" if bind else str(port), "-h", root]


def plain_address(peer: str) -> str:
    """'[::ffff:198.51.100.2]' as busybox httpd reports it -> '198.51.100.2'."""
    return peer.strip().strip("[]").removeprefix("::ffff:")


def wget(scope, box, url: str, timeout: int = 5):
    """Fetch *url* from inside *box*.

    Bounded by the exec's own `timeout`: `wget -T` crashes Debian 12's busybox-static 1.35.
    """
    return scope.exec(box, "wget", "-q", "-O", "-", url, timeout=timeout)


EXPOSED_PORT = 9999  # the port the probe image EXPOSEs (fixtures/probe/Dockerfile)


def pings(scope, box, address: str) -> bool:
    """One busybox ping from inside *box*; True if answered within SILENCE_S."""
    return scope.exec(box, "ping", "-c", "1", "-W", str(SILENCE_S), address).exit_code == 0


def reachable(netns, address: str, port: int, timeout: float = SILENCE_S) -> bool:
    """Whether a TCP connection from *netns* to address:port is accepted."""
    with netns.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
        except OSError:
            return False
        return True


def host_end(engine_netns, box_netns, ifname: str = "eth0") -> tuple[str, dict]:
    """The engine-side end of a container's veth, as (name, netlink link)."""
    peer_index = box_netns.links()[ifname]["link"]
    return next((name, link) for name, link in engine_netns.links().items() if link["index"] == peer_index)


def ipv4_of(netns, ifname: str = "eth0") -> list[str]:
    """The IPv4 addresses (CIDR) of one interface, read by netlink."""
    with netns.iproute() as ipr:
        index = ipr.link_lookup(ifname=ifname)
        return [f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr(family=socket.AF_INET, index=index[0])]


def server_and_client(scope, network: str = "bridge"):
    """A web server and a client container on *network*, the server already listening."""
    server, client = scope.containers(srv={"command": httpd(), "network": network}, cli={"network": network})
    scope.wait_listening(server, HTTPD_PORT)
    return server, client


def subnet_network(scope, lab, suffix: str, gateway_index: int = 1, **kwargs):
    """A network with an explicit --subnet (and --gateway) from the suite's own range; (network, subnet, gateway)."""
    subnet = lab.free_subnet()
    gateway = str(subnet[gateway_index])
    pool = docker.types.IPAMPool(subnet=str(subnet), gateway=gateway)
    network = scope.network(suffix, ipam=docker.types.IPAMConfig(pool_configs=[pool]), **kwargs)
    return network, subnet, gateway


def resolv(scope, box) -> dict[str, list[str]]:
    """The nameserver and search entries of a container's /etc/resolv.conf."""
    return parse_resolv_conf(scope.exec(box, "cat", "/etc/resolv.conf").output)


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


def established(netns: Netns) -> list[dict]:
    """The established TCP connections in *netns*, with the socket inode of each, read by netlink
    (sock_diag): [{"local": (addr, port), "remote": (addr, port), "inode": N}], an IPv4-mapped IPv6
    address as its IPv4 one (busybox httpd listens on [::])."""
    def plain(address: str) -> str:
        ip = ipaddress.ip_address(address)
        return str(getattr(ip, "ipv4_mapped", None) or ip)

    with netns.entered(), DiagSocket() as diag:
        diag.bind()
        found = [s for family in (socket.AF_INET, socket.AF_INET6)
                 for s in diag.get_sock_stats(family=family, states=1 << SS_ESTABLISHED)]
    return [{"local": (plain(s["idiag_src"]), s["idiag_sport"]), "remote": (plain(s["idiag_dst"]), s["idiag_dport"]),
             "inode": s["idiag_inode"]} for s in found]


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
        return plain_address(lab.http_get(port, "/cgi-bin/peer"))
    except OSError as exc:  # refused, reset, timed out, unreachable; ConnectionError is one too
        raise AssertionError(f"GET {lab.upstream.engine_addr}:{port} from upstream ({lab.upstream.upstream_addr}) "
                             f"failed: {exc!r}") from None


@contextlib.contextmanager
def serving(scope, box, port: int) -> Iterator[ExecResult]:
    """busybox httpd on *port* in a running *box*, started by an exec: httpd binds, then forks into the
    background, so the exec's result says whether it got the port (exit 0) or why not.  Stopped after, by
    its exact command line (busybox has no pkill; where the box sees the host's processes, only it matches)."""
    argv = ["httpd", "-p", str(port), "-h", "/www"]
    started = scope.exec(box, *argv)
    try:
        yield started
    finally:
        if started.exit_code == 0:
            scope.sh(box, "for p in $(pidof httpd); do "
                          f"""[ "$(tr '\\0' ' ' < /proc/$p/cmdline)" = "{' '.join(argv)} " ] && kill "$p"; done""")
            wait_for(lambda: port not in listening_tcp_ports(scope.pid(box)), f"httpd on port {port} to stop",
                     timeout=5)
