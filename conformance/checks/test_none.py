"""--network none: only loopback, no route, nothing reachable."""

import ipaddress

import pytest

from conformance.plugin import article_claim, claims

from .helpers import IFF_UP, SILENCE_S, echo_blockers, fallback_note, fallback_tunnels, made_links


@pytest.fixture(scope="module")
def nones(standing, shared):
    """Two containers run with --network none, for the checks that only look at them: a standing one, and
    one of the module's own (two show whether none-mode containers share a namespace)."""
    (one,) = standing("none")
    return one, shared.container("two", network="none")


@claims("none/only-loopback")
def test_only_loopback(claim, nones, evidence):
    box, _ = nones
    links = box.netns.links()
    own_view = box.exec("ls", "/sys/class/net").output.split()
    made, note = made_links(links), fallback_note(links)
    evidence.json("netlink-links", {"links": links, "note": note})
    evidence.text("container-sys-class-net", "\n".join(own_view))
    assert made == ["lo"], f"netlink in the container's namespace lists {made} ({note})"
    seen = [name for name in own_view if name not in fallback_tunnels(links)]
    assert seen == ["lo"], f"the container lists {seen} in /sys/class/net ({note})"


@claims("none/no-connectivity")
def test_no_connectivity(claim, nones, lab, evidence):
    box, _ = nones
    netns = box.netns
    routes, addresses, lo = netns.routes(), netns.addresses(), netns.links()["lo"]["index"]
    ping = box.ping(lab.upstream.remote, wait=SILENCE_S)
    evidence.json("routes-and-addresses", {"routes": routes, "addresses": addresses})
    evidence.text("ping-upstream", ping.output)
    # the kernel's own route for lo's ::1 ("::1 dev lo") is in the main table wherever IPv6 is on: loopback
    beyond = [r for r in routes if not (r["oif"] == lo and r["dst"] != "default/0"
                                        and ipaddress.ip_network(r["dst"], strict=False).is_loopback)]
    assert beyond == [], f"the main routing table holds routes besides loopback: {beyond}"
    assert set(addresses) <= {"127.0.0.1/8", "::1/128"}, f"addresses beyond loopback: {addresses}"
    assert ping.exit_code != 0, f"ping to {lab.upstream.remote} succeeded from a none-mode container"


@claims("none/own-namespace")
def test_own_namespace(claim, nones, lab, evidence):
    one, two = nones
    inodes = {"engine": lab.engine.netns.inode, "one": one.netns.inode, "two": two.netns.inode}
    evidence.json("namespaces", inodes)
    assert len(set(inodes.values())) == 3, f"none-mode namespaces are shared: {inodes}"


@claims("none/user-can-add-interface")
def test_user_can_add_interface(claim, scope, namespaces, evidence):
    box = scope.container("diy", network="none")
    inside, outside = box.netns, namespaces("diy")
    outside.add_veth("diy0", "eth0", peer_netns=inside)
    outside.up("diy0", "192.0.2.1/24")
    inside.up("eth0", "192.0.2.2/24")
    addresses = inside.addresses()
    replied = box.ping("192.0.2.1").exit_code == 0
    evidence.json("diy", {"addresses_in_the_container": addresses, "ping_192.0.2.1": replied})
    assert "192.0.2.2/24" in addresses, f"the container's namespace does not hold the address it was given: {addresses}"
    assert replied, (
        f"the container does not reach the other end of the interface it was given ({echo_blockers(outside)})")


@claims("none/no-configuration-at-all")
def test_no_configuration_at_all(claim, nones, evidence):
    box, _ = nones
    netns = box.netns
    links, addresses = netns.links(), netns.addresses()
    ping = box.ping("127.0.0.1")
    note = fallback_note(links)
    evidence.json("loopback", {"links": links, "addresses": addresses, "ping_127.0.0.1": ping.output, "note": note})
    assert made_links(links) == ["lo"], f"the container has interfaces besides lo: {made_links(links)} ({note})"
    lo_up = bool(links["lo"]["flags"] & IFF_UP)
    assert lo_up and "127.0.0.1/8" in addresses, f"lo is {'up' if lo_up else 'down'} with {addresses}"
    assert ping.exit_code == 0, f"127.0.0.1 does not answer inside the container:\n{ping.output}"
    article_claim(not lo_up, "the engine set up the none-mode container's loopback: lo is up with 127.0.0.1/8")
