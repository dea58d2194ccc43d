"""Network namespaces through pyroute2, as context managers whose cleanup always runs.

Modelled on the kernel's selftests/net/lib/py: a namespace is an object you can
open netlink and sockets in; a namespace the suite creates is removed on exit.
What the checks ask of reach from a namespace (a TCP connection, whether one is accepted, a GET, an ICMP
echo) is asked here, one way whichever namespace it is; from inside a container, with its own tools, its Box
asks (lab/engines/box.py).
"""

from __future__ import annotations

import ctypes
import http.client
import ipaddress
import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

from pyroute2 import DiagSocket, IPRoute, NetlinkError
from pyroute2 import netns as _netns
from pyroute2.netlink.diag import SS_ESTABLISHED, SS_LISTEN

from ..managed import Managed
from ..tally import count

NETNS_RUN_DIR = Path("/run/netns")
# Two deadlines, and every probe's caller chooses by what its claim asserts.
# The silence budget: how long a probe waits for an answer that must NOT come.  On one machine an answer takes
# well under a millisecond, so a second is ample, and a check that expects silence spends no more than that.
SILENCE_S = 1
# The answer deadline: how long a probe waits for an answer that MUST come.  It returns on the first reply, so a
# healthy host never waits it out; it outlasts what a loaded runner loses: an ARP request (retried each second,
# three times), a SYN (retransmitted after 1 s and 3 s more), an echo request (box.ping sends another each second).
ANSWER_S = 10


_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


class Netns:
    """A network namespace named by a path: a bind mount or /proc/PID/ns/net."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = str(path)

    def __repr__(self) -> str:
        return f"Netns({self.path!r})"

    @property
    def inode(self) -> int:
        """Two paths name the same namespace exactly when their inodes match."""
        return os.stat(self.path).st_ino

    @contextmanager
    def entered(self) -> Iterator[None]:
        """This thread inside the namespace for the block: a socket made there stays there after.

        setns(2) moves only the calling thread, and it is moved back however the block ends; so
        this costs microseconds where forking a helper into the namespace costs milliseconds.
        """
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            target = os.open(self.path, os.O_RDONLY)
            try:
                _setns(target)
                try:
                    yield
                finally:
                    _setns(own)
            finally:
                os.close(target)
        finally:
            os.close(own)

    def connect(self, address: str, port: int, timeout: float = ANSWER_S) -> socket.socket:
        """A TCP connection from here to address:port (IPv4 or IPv6, by the address), connected within
        *timeout*; the OSError of a refusal, a reset, a timeout or no route is the caller's."""
        sock = self.socket(_family(address), socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
        except BaseException:
            sock.close()
            raise
        return sock

    def reachable(self, address: str, port: int, timeout: float = ANSWER_S) -> bool:
        """Whether a TCP connection from here to address:port is accepted within *timeout*: ANSWER_S (it returns
        as the connection is made) where the claim says it must be, SILENCE_S where it must not.  Only the
        connection's failure means no: a namespace that cannot be entered (its container gone) raises."""
        with self.socket(_family(address), socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect((address, port))
            except OSError:
                return False
            return True

    def http_get(self, address: str, port: int, path: str = "/", timeout: float = ANSWER_S) -> str:
        """GET *path* at address:port from here; the body of a 200 response as text.  Any other answer, or
        one that is not HTTP, is a ConnectionError; not getting one at all, the OSError of the connection."""
        connection = _HTTPFrom(self, address, port, timeout)
        try:
            # Host: any name will do; busybox httpd serves its one site whatever the header says
            connection.request("GET", path, headers={"Host": "probe"})
            response = connection.getresponse()
            body = response.read().decode(errors="replace")
        except http.client.HTTPException as exc:
            raise ConnectionError(f"unexpected HTTP response: {exc!r}") from None
        finally:
            connection.close()
        if response.status != 200:
            raise ConnectionError(f"unexpected HTTP response: {response.status} {response.reason}")
        return body

    def pings(self, address: str, timeout: float = ANSWER_S) -> bool:
        """Whether one ICMP echo request from here to *address* is answered within *timeout* (icmp.py: no
        ping binary needed): ANSWER_S, which a reply ends, where an answer must come; SILENCE_S where not.
        Raises the kernel's OSError when it refuses to send (no route, network down)."""
        from .icmp import echo  # scapy, which only what pings from a namespace needs (see lab/__init__.py)

        with self.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
            return echo(sock, address, timeout)

    def iproute(self) -> IPRoute:
        """A netlink socket inside this namespace (close it, or use it in a with block)."""
        with self.entered():
            return IPRoute()

    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0) -> socket.socket:
        """A socket opened inside this namespace; it keeps working from the suite's own namespace."""
        with self.entered():
            return socket.socket(family, type, proto)

    def run(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a program inside this namespace (used only where no library can answer)."""
        return subprocess.run(
            ["nsenter", f"--net={self.path}", *argv],
            capture_output=True, text=True, timeout=timeout, check=False,
        )

    def sysctl(self, key: str, value: str | None = None) -> str:
        """Read, or with *value* write, /proc/sys/*key* ("net/ipv4/ip_forward") as seen in this namespace."""
        argv = ["cat", f"/proc/sys/{key}"] if value is None else ["sh", "-c", f"echo {value} > /proc/sys/{key}"]
        result = self.run(*argv)
        if result.returncode != 0:
            raise OSError(f"sysctl {key} in {self}: {result.stderr.strip()}")
        return result.stdout.strip()

    def local_port_range(self) -> range:
        """net.ipv4.ip_local_port_range: where random ports (-P, outgoing connections) come from."""
        low, high = self.sysctl("net/ipv4/ip_local_port_range").split()
        return range(int(low), int(high) + 1)

    def add_veth(self, name: str, peer: str, peer_netns: Netns | None = None) -> None:
        """A veth pair *name*/*peer* created here, the peer moved to *peer_netns* if given."""
        with self.iproute() as ipr:
            ipr.link("add", ifname=name, kind="veth", peer=peer)
            if peer_netns is not None:
                ipr.link("set", index=ipr.link_lookup(ifname=peer)[0], net_ns_fd=peer_netns.path)

    def veth(self, name: str, peer: str, peer_netns: Netns | None = None) -> Veth:
        """``add_veth`` for the length of a with block; the pair is deleted however the block ends."""
        return Veth(self, name, peer, peer_netns)

    def delete(self, ifname: str) -> bool:
        """Delete *ifname* if it is here (a veth takes its peer with it); whether it was."""
        with self.iproute() as ipr:
            found = ipr.link_lookup(ifname=ifname)
            for index in found:
                ipr.link("del", index=index)
        return bool(found)

    def up(self, ifname: str, *addresses: str, master: str | None = None) -> None:
        """Bring *ifname* up, after adding *addresses* ("10.0.0.1/24") and enslaving it to *master*."""
        with self.iproute() as ipr:
            (index,) = ipr.link_lookup(ifname=ifname)
            for cidr in addresses:
                address, prefix = cidr.split("/")
                ipr.addr("add", index=index, address=address, prefixlen=int(prefix))
            if master is not None:
                ipr.link("set", index=index, master=ipr.link_lookup(ifname=master)[0])
            ipr.link("set", index=index, state="up")

    def links(self, *indexes: int) -> dict[str, dict]:
        """Interface name -> {index, kind, address, operstate, master, flags, link, link_netnsid} by netlink: of
        every interface, or of those of *indexes* that exist here (asked for one by one, not dumped).

        ``link`` is a veth's peer index, counted in the peer's namespace when ``link_netnsid`` is set.
        """
        with self.iproute() as ipr:
            found = []
            if not indexes:
                found = list(ipr.get_links())
            for index in indexes:
                with suppress(NetlinkError):  # no such interface here
                    found += ipr.get_links(index)
            result = {}
            for link in found:
                info = link.get("IFLA_LINKINFO")
                result[link.get("IFLA_IFNAME")] = {
                    "index": link["index"],
                    "kind": info.get("IFLA_INFO_KIND") if info else None,
                    "address": link.get("IFLA_ADDRESS"),
                    "operstate": link.get("IFLA_OPERSTATE"),
                    "master": link.get("IFLA_MASTER"),
                    "flags": link["flags"],
                    "mtu": link.get("IFLA_MTU"),
                    "link": link.get("IFLA_LINK"),
                    "link_netnsid": link.get("IFLA_LINK_NETNSID"),
                }
            return result

    def addresses(self) -> list[str]:
        """Every address in CIDR form, IPv4 and IPv6."""
        with self.iproute() as ipr:
            return sorted(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr())

    def owner_macs(self, addresses: set[str]) -> dict[str, str]:
        """IPv4 address -> the MAC of the interface here that holds it, for those of *addresses* held here."""
        with self.iproute() as ipr:
            owners = {a.get("IFA_ADDRESS"): a["index"] for a in ipr.get_addr(family=socket.AF_INET)
                      if a.get("IFA_ADDRESS") in addresses}
            macs = {index: ipr.get_links(index)[0].get("IFLA_ADDRESS") for index in set(owners.values())}
        return {address: macs[index] for address, index in owners.items() if macs[index]}

    def neighbours(self) -> list[dict]:
        """The neighbour (ARP and NDP) table as dst/lladdr/ifindex dictionaries."""
        with self.iproute() as ipr:
            return [
                {"dst": n.get("NDA_DST"), "lladdr": n.get("NDA_LLADDR"), "ifindex": n["ifindex"]}
                for n in ipr.get_neighbours()
            ]

    def forget_neighbour(self, dst: str, ifindex: int) -> None:
        """Delete the neighbour entry for *dst* on *ifindex*: the next packet to it asks afresh."""
        with self.iproute() as ipr:
            ipr.neigh("del", dst=dst, ifindex=ifindex)

    def routes(self, table: int = 254) -> list[dict]:
        """Routes of one table (main by default) as dst/gateway/oif dictionaries."""
        with self.iproute() as ipr:
            return [
                {
                    "family": r["family"],
                    "dst": f"{r.get('RTA_DST') or 'default'}/{r['dst_len']}",
                    "gateway": r.get("RTA_GATEWAY"),
                    "oif": r.get("RTA_OIF"),
                }
                for r in ipr.get_routes(table=table)
            ]

    def tcp_sockets(self, state: int = SS_ESTABLISHED) -> list[dict]:
        """The TCP sockets in *state* (sock_diag's SS_*), IPv4 and IPv6: {"local": (addr, port), "remote":
        (addr, port), "inode": N}, an IPv4-mapped IPv6 address as its IPv4 one (busybox httpd listens on [::])."""
        def plain(address: str) -> str:
            ip = ipaddress.ip_address(address)
            return str(getattr(ip, "ipv4_mapped", None) or ip)

        with self.entered(), DiagSocket() as diag:
            diag.bind()
            found = [s for family in (socket.AF_INET, socket.AF_INET6)
                     for s in diag.get_sock_stats(family=family, states=1 << state)]
        return [{"local": (plain(s["idiag_src"]), s["idiag_sport"]),
                 "remote": (plain(s["idiag_dst"]), s["idiag_dport"]), "inode": s["idiag_inode"]} for s in found]

    def listening_tcp_ports(self) -> set[int]:
        return {s["local"][1] for s in self.tcp_sockets(SS_LISTEN)}


def _family(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


class _HTTPFrom(http.client.HTTPConnection):
    """http.client over a connection made in a namespace (Netns.connect), not in the suite's own."""

    def __init__(self, netns: Netns, address: str, port: int, timeout: float):
        super().__init__(address, port, timeout=timeout)
        self._netns = netns
        self._timeout = timeout

    def connect(self) -> None:
        self.sock = self._netns.connect(self.host, self.port, self._timeout)


class NamedNetns(Netns, Managed):
    """A namespace the suite creates under /run/netns, removed on exit; lo is brought up unless ``fresh``."""

    def __init__(self, name: str, fresh: bool = False):
        super().__init__(NETNS_RUN_DIR / name)
        self.name = name
        self.fresh = fresh

    def _setup(self, stack: ExitStack) -> None:
        _netns.create(self.name)
        count("namespaces")
        stack.callback(self._remove)
        if not self.fresh:
            self.up("lo")

    def _remove(self) -> None:
        if os.path.exists(self.path):
            _netns.remove(self.name)


class Veth(Managed):
    """A veth pair made in *netns* for the length of a with block (``Netns.veth``): a link the run creates, so a
    lab object, deleted (with its peer) however the block ends."""

    def __init__(self, netns: Netns, name: str, peer: str, peer_netns: Netns | None):
        self.netns = netns
        self.name = name
        self.peer = peer
        self.peer_netns = peer_netns

    def _setup(self, stack: ExitStack) -> None:
        self.netns.add_veth(self.name, self.peer, self.peer_netns)
        stack.callback(self.netns.delete, self.name)


def namespace_of(pid: int) -> Netns:
    return Netns(f"/proc/{pid}/ns/net")
