"""The egress guard fails when a packet of the suite leaves through an uplink, and only then.

The "machine" is a namespace with one uplink that leads nowhere (a dummy or ifb
device: what is sent to it goes no further), so the self-test itself sends
nothing off this machine.
"""

import ipaddress
import os
import socket
from contextlib import ExitStack

import pytest
from pyroute2.netlink.exceptions import NetlinkError
from scapy.error import Scapy_Exception
from scapy.layers.inet import UDP

from conformance.lab.kernel.capture import Capture
from conformance.lab.kernel.netns import NamedNetns
from conformance.lab.safety import guard as guard_module
from conformance.lab.safety.guard import Guard
from conformance.lab.safety.identity import Run
from conformance.lab.wait import wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create namespaces")


@pytest.fixture
def machine():
    """A namespace whose one uplink, up0 (10.99.0.1/24), leads nowhere; on lo 198.18.0.1, an address of the
    run's network 198.18.0.0/24, and 198.18.9.1, of the same range but not the run's."""
    with NamedNetns(Run().name("guard")) as netns:
        for kind in ("dummy", "ifb"):
            try:
                with netns.iproute() as ipr:
                    ipr.link("add", ifname="up0", kind=kind)
                break
            except NetlinkError:
                continue
        else:
            pytest.skip("the kernel has neither dummy nor ifb devices")
        netns.up("up0", "10.99.0.1/24")
        netns.up("lo", "198.18.0.1/32", "198.18.9.1/32")
        yield netns


def send(netns, source: str, destination: str) -> None:
    with netns.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.sendto(b"probe", (destination, 9))


def test_suite_address_on_an_uplink_is_a_leak(machine):
    with Guard(machine, None, [ipaddress.ip_network("198.18.0.0/24")]) as guard:
        send(machine, "10.99.0.1", "10.99.0.2")  # the host's own traffic: none of the guard's business
        send(machine, "198.18.9.1", "10.99.0.2")  # the host's too, though from a range the suite draws from
        send(machine, "198.18.0.1", "10.99.0.2")
    assert guard.uplinks == ["up0"]
    assert [p.summary() for p in guard.leaks()] == [
        f"IP / UDP 198.18.0.1:{guard.leaks()[0].sport} > 10.99.0.2:discard / Raw"
    ], "the suite's packet on the uplink was not caught, or the host's was"


@pytest.fixture
def box(machine):
    """A "container" on the machine: a namespace behind the veth vb0 (10.98.0.1/24), itself 10.98.0.2/24,
    routed through the machine, which forwards."""
    with NamedNetns(Run().name("box")) as netns, machine.veth("vb0", "eth0", peer_netns=netns):
        machine.up("vb0", "10.98.0.1/24")
        netns.up("eth0", "10.98.0.2/24")
        machine.sysctl("net/ipv4/ip_forward", "1")
        with netns.iproute() as ipr:
            ipr.route("add", dst="default", gateway="10.98.0.1")
            ipr.neigh("add", dst="10.98.0.9", lladdr="02:00:00:00:00:09", ifindex=ipr.link_lookup(ifname="eth0")[0],
                      state=128)
        yield netns


def test_container_packet_off_its_networks_is_a_leak(machine, box):
    with Guard(machine, None, [ipaddress.ip_network("198.18.0.0/24")]) as guard:
        guard.watch(box)
        send(box, "10.98.0.2", "10.99.0.7")
    assert guard.ends == {"vb0"} and guard.describe()["leaks"] == 1, [p.summary() for p in guard.leaks()]


def test_packet_of_a_container_the_suite_never_started_is_no_leak(machine, box):
    with Guard(machine, None, [ipaddress.ip_network("198.18.0.0/24")]) as guard:
        send(box, "10.98.0.2", "10.99.0.7")
    assert guard.leaks() == []


def test_container_packet_within_its_network_is_no_leak(machine, box):
    with Guard(machine, None, [ipaddress.ip_network("198.18.0.0/24")]) as guard:
        guard.watch(box)
        send(box, "10.98.0.2", "10.98.0.9")
    assert guard.leaks() == []


def _open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except FileNotFoundError:  # the directory's own descriptor, closed by now
            continue
    return count


def test_a_capture_whose_filter_cannot_attach_leaves_no_socket(machine):
    before = _open_sockets()
    with pytest.raises(Scapy_Exception), Capture(machine, "up0", "no such filter ((("):
        pass
    assert _open_sockets() == before, "the capture's socket outlived its failed start"


def test_the_guard_closes_every_capture_though_one_fails_to(machine, monkeypatch):
    closed: list[str | None] = []

    def fail() -> None:
        raise OSError("this capture cannot close")

    class Recorded(Capture):
        def _setup(self, stack: ExitStack) -> None:
            super()._setup(stack)
            stack.callback(closed.append, self.ifname)
            if self.ifname == "up0":
                stack.callback(fail)

    monkeypatch.setattr(guard_module, "Capture", Recorded)
    guard = Guard(machine, None, [ipaddress.ip_network("198.18.0.0/24")])
    with pytest.raises(OSError, match="cannot close"), guard:
        pass
    assert sorted(closed, key=str) == [None, "up0"], f"closed only {closed}"


def test_a_capture_parses_each_frame_once_and_sees_what_came_later(machine):
    with Capture(machine, "lo") as capture:
        send(machine, "198.18.0.1", "198.18.0.1")
        first = capture.wait(lambda p: UDP in p)
        send(machine, "198.18.0.1", "198.18.0.1")
        wait_for(lambda: len(capture.packets(lambda p: UDP in p)) > len(first), "the second datagram", timeout=3)
        later = capture.packets(lambda p: UDP in p)
    assert first and all(a is b for a, b in zip(first, later[:len(first)], strict=True)), (
        "frames already parsed were parsed again")
