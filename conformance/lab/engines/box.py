"""A probe container of one check, and what a check asks of it.

A ``Box`` is the docker SDK's ``Container`` (so anything that takes one, ``network.connect(box)`` included,
takes it) with the questions the checks put to a container: run a command in it, its process, its network
namespace (a ``Netns``: pyroute2 reads its links and addresses, scapy captures its traffic), its address and
MAC on a network, a fetch and a ping from inside it (with its busybox, as the articles do), its resolv.conf.
``Scope.container`` makes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from docker.models.containers import Container

from ..kernel.capture import Capture
from ..kernel.machine import parse_resolv_conf
from ..kernel.netns import ANSWER_S, Netns, namespace_of
from ..wait import wait_for


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: str


class Box(Container):
    """``box.exec("ip", "addr")``, ``box.netns.links()``, ``box.address(network)``, ``box.fetch(url)``,
    ``box.ping(address)``, ``box.capture("eth0")``."""

    def __init__(self, container: Container, default_network: str):
        super().__init__(attrs=container.attrs, client=container.client,
                         collection=container.collection)  # type: ignore[arg-type]  # it makes Containers
        self.default_network = default_network  # what "bridge" means on this engine (Podman: "podman")

    def exec(self, *argv: str, timeout: int = 10) -> ExecResult:
        """Run *argv* in the container, bounded by busybox `timeout`."""
        code, output = self.exec_run(["timeout", str(timeout), *argv], demux=False)
        assert isinstance(output, bytes | None) and code is not None  # neither streamed nor detached
        return ExecResult(code, (output or b"").decode(errors="replace"))

    def sh(self, script: str, timeout: int = 10) -> ExecResult:
        return self.exec("sh", "-c", script, timeout=timeout)

    @property
    def pid(self) -> int:
        """Its first process, as the engine reports it now."""
        self.reload()
        return self.attrs["State"]["Pid"]

    @property
    def netns(self) -> Netns:
        return namespace_of(self.pid)

    def endpoint(self, network: str = "bridge") -> dict:
        """Its settings on *network* (``NetworkSettings.Networks``, the only place API 1.52 keeps
        addresses); "bridge" is the engine's default network whatever its name."""
        self.reload()
        networks = self.attrs["NetworkSettings"]["Networks"]
        return networks[self.default_network if network == "bridge" and network not in networks else network]

    def address(self, network: str = "bridge") -> str:
        return self.endpoint(network)["IPAddress"]

    def mac(self, network: str = "bridge") -> str:
        return self.endpoint(network)["MacAddress"]

    def fetch(self, url: str, timeout: int = 5) -> ExecResult:
        """GET *url* from inside, with busybox wget; bounded by the exec's own `timeout` (`wget -T` crashes
        Debian 12's busybox-static 1.35)."""
        return self.exec("wget", "-q", "-O", "-", url, timeout=timeout)

    def ping(self, address: str, count: int = 1, wait: int = ANSWER_S, adaptive: bool = False,
             pattern: int | None = None) -> ExecResult:
        """busybox ping from inside; *wait* is chosen by what the claim asserts: ANSWER_S, the answer deadline,
        for a reply that must come, SILENCE_S, the silence budget, for one that must not.  With one echo
        (*count* 1) a request is sent each second until the first reply or *wait* seconds (one lost ARP or echo
        on a loaded runner is then no failure, and a reply ends it at once); with more, *count* requests (-c)
        and *wait* seconds for the first reply (-W); *adaptive* (-A) sends each as the last one's reply comes;
        *pattern* (-p) is the byte filling the payload, to tell these requests from any other.  Exit code 0:
        answered; the output (every attempt) is the evidence."""
        options = [*(["-A"] if adaptive else []), *(["-p", f"{pattern:02x}"] if pattern is not None else [])]
        if count == 1:
            tries = ('i=0; while :; do ping -c 1 -W 1 "$@" && exit 0; i=$((i+1)); '
                     f'[ "$i" -lt {max(wait, 1)} ] || exit 1; done')
            return self.exec("sh", "-c", tries, "ping", *options, address, timeout=wait + 5)
        return self.exec("ping", "-c", str(count), "-W", str(wait), *options, address, timeout=wait + count + 5)

    def resolv(self) -> dict[str, list[str]]:
        """The nameserver and search entries of its /etc/resolv.conf."""
        return parse_resolv_conf(self.exec("cat", "/etc/resolv.conf").output)

    def capture(self, ifname: str | None = "eth0", ipv4_filter: str | None = None) -> Capture:
        """A capture of its traffic on *ifname* (None: every interface of its namespace)."""
        return Capture(self.netns, ifname, ipv4_filter)

    def wait_listening(self, port: int, timeout: float = 15) -> None:
        netns = self.netns
        wait_for(lambda: port in netns.listening_tcp_ports(), f"{self.name} to listen on TCP {port}",
                 timeout=timeout)
