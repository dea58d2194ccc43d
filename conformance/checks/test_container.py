"""--network container:X — the b1/b2 experiment: one network stack, two filesystems, two process lists."""

import os

import pytest
from scapy.layers.inet import ICMP, IP

from conformance.lab.kernel.capture import Capture
from conformance.plugin import claims, prerequisite

from .helpers import PROBE_PAGE

MARKER = "3599"
MEMBER_BYTE = 0xCF  # ping -p: b1's pings fill their payload with it
MEMBER_PATTERN = bytes([MEMBER_BYTE]) * 16  # b1 runs `sleep 3599`: a process only b1 has
LOOPBACK_PORT, SHARED_PORT = 8081, 8082


@pytest.fixture(scope="module")
def joined(shared):
    """The article's experiment, shared by the module's checks: b1, and b2 run with --network container:b1.
    Servers a check needs are started in it with exec, each check on ports of its own."""
    b1 = shared.container("b1", ["sleep", MARKER])
    b2 = shared.container("b2", network=f"container:{b1.name}")
    return b1, b2


@claims("container/shares-network-stack")
def test_shares_network_stack(claim, joined, evidence):
    b1, b2 = joined
    netns1, netns2 = b1.netns, b2.netns
    links1, links2 = netns1.links(), netns2.links()
    addresses1, addresses2 = netns1.addresses(), netns2.addresses()
    evidence.json("netlink", {"b1": {"links": links1, "addresses": addresses1},
                              "b2": {"links": links2, "addresses": addresses2}})
    assert netns1.inode == netns2.inode, "b2 has a network namespace of its own"
    macs1, macs2 = ({n: link["address"] for n, link in links.items()} for links in (links1, links2))
    assert macs2 == macs1, f"b2's interfaces and MAC addresses {macs2} are not b1's {macs1}"
    assert "eth0" in links2 and addresses2 == addresses1, f"b1 holds {addresses1}, b2 {addresses2}"


@claims("container/loopback-between-members")
def test_loopback_between_members(claim, joined, evidence):
    b1, b2 = joined
    started = b1.exec("httpd", "-p", f"127.0.0.1:{LOOPBACK_PORT}", "-h", "/www")
    assert started.exit_code == 0, f"control: httpd did not start in b1: {started.output}"
    b1.wait_listening(LOOPBACK_PORT)
    fetched = b2.fetch(f"http://127.0.0.1:{LOOPBACK_PORT}/")
    evidence.text("wget-127.0.0.1", f"exit {fetched.exit_code}\n{fetched.output}")
    assert fetched.exit_code == 0 and PROBE_PAGE in fetched.output, f"wget 127.0.0.1 from b2: {fetched.output}"


@claims("container/served-at-shared-address")
def test_served_at_shared_address(claim, joined, evidence):
    b1, b2 = joined
    site = b2.sh("mkdir -p /tmp/site && echo 'hellp world' > /tmp/site/index.html && httpd -p 80 -h /tmp/site")
    assert site.exit_code == 0, f"control: httpd did not start in b2: {site.output}"
    b2.wait_listening(80)
    address = b1.address()
    fetched = b1.fetch(f"{address}:80")
    evidence.text("wget-shared-address", f"wget {address}:80 from b1: exit {fetched.exit_code}\n{fetched.output}")
    assert fetched.exit_code == 0 and "hellp world" in fetched.output, f"b1 got: {fetched.output}"


@claims("container/filesystem-isolated")
def test_filesystem_isolated(claim, joined, evidence):
    b1, b2 = joined
    made = b1.exec("sh", "-c", "mkdir /tmp/data && ls /tmp")
    seen = b2.exec("ls", "/tmp")
    evidence.text("tmp-listings", f"# b1: mkdir /tmp/data; ls /tmp\n{made.output}\n# b2: ls /tmp\n{seen.output}")
    assert made.exit_code == 0 and "data" in made.output.split(), f"mkdir in b1 failed: {made.output}"
    assert "data" not in seen.output.split(), "b2 sees the directory made in b1"


@claims("container/process-list-isolated")
def test_process_list_isolated(claim, joined, evidence):
    marker = MARKER
    b1, b2 = joined
    in_b1 = b1.exec("ps", "-o", "pid,args").output
    in_b2 = b2.exec("ps", "-o", "pid,args").output
    pidns = {name: os.stat(f"/proc/{box.pid}/ns/pid").st_ino for name, box in (("b1", b1), ("b2", b2))}
    evidence.text("process-lists", f"# b1\n{in_b1}\n# b2\n{in_b2}\n# pid namespaces {pidns}")
    assert f"sleep {marker}" in in_b1, "control: b1 does not list its own process"
    assert pidns["b1"] != pidns["b2"], "b1 and b2 share a PID namespace"
    assert f"sleep {marker}" not in in_b2, "b2 lists b1's process"


@claims("container/shared-port-space")
def test_shared_port_space(claim, joined, evidence):
    b1, b2 = joined
    started = b1.exec("httpd", "-p", str(SHARED_PORT), "-h", "/www")
    assert started.exit_code == 0, f"control: httpd did not start in b1: {started.output}"
    b1.wait_listening(SHARED_PORT)
    taken = b2.exec("httpd", "-f", "-p", str(SHARED_PORT), "-h", "/www", timeout=3)
    free = b2.exec("httpd", "-p", str(SHARED_PORT + 1), "-h", "/www")
    evidence.text("bind-in-b2", f"port {SHARED_PORT} (b1's): exit {taken.exit_code} {taken.output}\n"
                                f"port {SHARED_PORT + 1}: exit {free.exit_code} {free.output}")
    assert free.exit_code == 0, f"control: b2 cannot bind a free port: {free.output}"
    assert taken.exit_code != 0 and "in use" in taken.output, f"b2 bound b1's port {SHARED_PORT}: {taken.output}"


@claims("container/egress-unchanged")
def test_egress_unchanged(claim, joined, lab, evidence):
    b1, b2 = joined
    remote, upstream = lab.upstream.remote, lab.upstream
    sources, replied = {}, {}
    for box in (b1, b2):
        with Capture(upstream.netns, upstream.upstream_if) as capture:
            replied[box.name] = box.ping(remote, wait=2).exit_code == 0
        sources[box.name] = sorted({p[IP].src for p in capture.packets(
            lambda p: IP in p and ICMP in p and p[IP].dst == remote and p[ICMP].type == 8)})
    evidence.json("egress", {"replied": replied, "sources_upstream": sources})
    assert all(replied.values()), (
        f"unanswered: {replied}; upstream saw the requests from {sources} (the host's address is "
        f"{upstream.engine_addr})")
    assert sources[b2.name] == sources[b1.name] == [upstream.engine_addr], f"sources seen upstream: {sources}"


@pytest.fixture
def member_egress(joined, lab):
    """The prerequisite of container/sees-member-traffic, whose traffic is b1's pings out and their replies: b1
    gets an answer from the upstream's server (egress), or there is no reply for a monitor to see."""
    b1, _ = joined
    ping = b1.ping(lab.upstream.remote)
    prerequisite(ping.exit_code == 0, f"egress: {b1.name} gets no answer from {lab.upstream.remote}:\n{ping.output}")


@claims("container/sees-member-traffic")
def test_sees_member_traffic(claim, joined, member_egress, standing, lab, evidence):
    """A monitor's view: a capture opened in b2's namespace (as b2's own process holds it) must see b1's
    marked pings and their replies, while a bystander on the same bridge, with a namespace of its own, sees
    none of them: the observation comes from sharing X's stack, not from the traffic being everywhere."""
    b1, b2 = joined
    assert b2.netns.inode == b1.netns.inode, "b2 has a network namespace of its own, not b1's"
    (bystander,) = standing("client")
    remote, b1_address = lab.upstream.remote, b1.address()
    ours = lambda p: IP in p and ICMP in p and MEMBER_PATTERN in bytes(p[ICMP].payload)  # noqa: E731
    with b2.capture() as monitor, bystander.capture() as elsewhere:
        sent = b1.ping(remote, count=3, wait=2, adaptive=True, pattern=MEMBER_BYTE)
        monitor.wait(lambda p: ours(p) and p[ICMP].type == 0 and p[IP].dst == b1_address)
    seen = {kind: sorted({(p[IP].src, p[IP].dst) for p in monitor.packets(ours) if p[ICMP].type == code})
            for kind, code in (("requests", 8), ("replies", 0))}
    leaked = elsewhere.packets(ours)
    evidence.pcap("b2-eth0", monitor)
    evidence.json("seen-by-b2", {"b1": b1_address, **seen, "seen_by_bystander": len(leaked), "ping": sent.output})
    assert sent.exit_code == 0, f"control: b1's pings went unanswered: {sent.output}"
    assert not leaked, f"control: a bystander with its own namespace saw {len(leaked)} of b1's pings"
    assert seen["requests"] == [(b1_address, remote)], f"b2 did not see b1's echo requests: {seen}"
    assert seen["replies"] == [(remote, b1_address)], f"b2 did not see the replies to b1: {seen}"
