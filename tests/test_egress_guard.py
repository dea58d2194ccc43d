"""The egress guard fails when a packet of the suite leaves through an uplink, and only then.

The "machine" is a namespace with one uplink that leads nowhere (a dummy or ifb
device: what is sent to it goes no further), so the self-test itself sends
nothing off this machine.
"""

import os
import socket

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from conformance.lab.guard import Guard
from conformance.lab.netns import NamedNetns
from conformance.lab.run import Run

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create namespaces")


@pytest.fixture
def machine():
    """A namespace whose one uplink, up0 (10.99.0.1/24), leads nowhere; 198.18.0.1 (a suite address) on lo."""
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
        netns.up("lo", "198.18.0.1/32")
        yield netns


def send(netns, source: str, destination: str) -> None:
    with netns.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.sendto(b"probe", (destination, 9))


def test_suite_address_on_an_uplink_is_a_leak(machine):
    with Guard(machine, None) as guard:
        send(machine, "10.99.0.1", "10.99.0.2")  # the host's own traffic: none of the guard's business
        send(machine, "198.18.0.1", "10.99.0.2")
    assert guard.uplinks == ["up0"]
    assert [p.summary() for p in guard.leaks()] == ["IP / UDP 198.18.0.1:{} > 10.99.0.2:discard / Raw".format(
        guard.leaks()[0].sport)], "the suite's packet on the uplink was not caught, or the host's was"


def test_container_packet_off_its_networks_is_a_leak(machine):
    with Guard(machine, None) as guard:
        guard.watch("10.99.0.1", 32)
        send(machine, "10.99.0.1", "10.99.0.7")
    assert len(guard.leaks()) == 1 and guard.describe()["leaks"] == 1


def test_packet_of_an_address_the_suite_never_started_is_no_leak(machine):
    with Guard(machine, None) as guard:
        send(machine, "10.99.0.1", "10.99.0.7")
    assert guard.leaks() == []


def test_container_packet_within_its_network_is_no_leak(machine):
    with Guard(machine, None) as guard:
        guard.watch("10.99.0.1", 24)
        send(machine, "10.99.0.1", "10.99.0.7")
    assert guard.leaks() == []
