"""Raw namespaces, veth pairs and bridges: the `ip netns` experiments, done with netlink.

Everything here happens inside namespaces the check creates, so it needs no
Docker engine and never touches a device of the host.
"""

import errno
import os
import subprocess
import time
from pathlib import Path

from pyroute2 import NetlinkError
from pyroute2 import netns as pyroute2_netns
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from conformance.lab.engines import firewall
from conformance.lab.kernel.capture import Capture, inject
from conformance.lab.kernel.netns import Netns
from conformance.lab.wait import wait_for
from conformance.plugin import article_claim, claims

from .helpers import IFF_UP, bridge_filters, echo_blockers, fallback_note, made_links

NOBODY = 65534
EXPERIMENTAL_ETHERTYPE = 0x88B5  # IEEE 802 "local experimental": never IP, so only layer 2 can carry it
BROADCAST = "ff:ff:ff:ff:ff:ff"
FENCE_GRACE_S = 0.05


def _frame(src: str, dst: str, marker: bytes) -> bytes:
    return bytes(Ether(src=src, dst=dst, type=EXPERIMENTAL_ETHERTYPE) / Raw(marker))


def _carrying(marker: bytes):
    return lambda p: Raw in p and marker in bytes(p[Raw])


def _move(source: Netns, ifname: str, target: Netns) -> NetlinkError | None:
    """Try to move *ifname*; the kernel's refusal, or None if it moved."""
    with source.iproute() as ipr:
        try:
            ipr.link("set", index=ipr.link_lookup(ifname=ifname)[0], net_ns_fd=target.path)
        except NetlinkError as exc:
            return exc
    return None


def _bridged(namespaces, ports: int = 3):
    """A hub namespace with bridge br0, and *ports* namespaces each joined to it by a veth (eth0: 10.0.0.N/24)."""
    hub = namespaces("hub")
    with hub.iproute() as ipr:
        ipr.link("add", ifname="br0", kind="bridge")
    hub.up("br0")
    leaves = []
    for n in range(1, ports + 1):
        leaf = namespaces(f"n{n}")
        hub.add_veth(f"p{n}", "eth0", peer_netns=leaf)
        hub.up(f"p{n}", master="br0")
        leaf.up("eth0", f"10.0.0.{n}/24")
        leaves.append(leaf)
    wait_for(lambda: all(leaf.links()["eth0"]["operstate"] == "UP" for leaf in leaves), "the bridge's ports to be up")
    return hub, leaves


@claims("netns/named-appears-in-list")
def test_named_appears_in_list(claim, namespaces, evidence):
    """The file must be the namespace itself (its bind mount), not merely a file of that name: entering it
    must put this thread in a namespace other than its own, the one the file's inode names."""
    ns0 = namespaces("ns0")
    listed = pyroute2_netns.listnetns()
    entry = Path("/var/run/netns") / ns0.name
    own = os.stat("/proc/thread-self/ns/net").st_ino
    try:
        with Netns(entry).entered():
            inside: int | OSError = os.stat("/proc/thread-self/ns/net").st_ino
    except OSError as exc:
        inside = exc
    evidence.json("named-namespaces", {"created": ns0.name, "listed": listed, "own_inode": own,
                                       "entered_inode": repr(inside), "file_inode": ns0.inode})
    assert ns0.name in listed, f"{ns0.name} is not in the list of named namespaces"
    assert not isinstance(inside, OSError), f"{entry} is listed, but is no network namespace: entering it: {inside}"
    assert inside != own and inside == entry.stat().st_ino, (
        f"entering {entry} led to namespace {inside}, not a new one named by the file (ours is {own})")


@claims("netns/duplicate-name-fails")
def test_duplicate_name_fails(claim, namespaces, evidence):
    ns0 = namespaces("ns0")
    before = ns0.inode
    try:
        pyroute2_netns.create(ns0.name)
        error = None
    except OSError as exc:
        error = exc
    evidence.text("second-create", f"create {ns0.name} again: {error!r}")
    assert error is not None, f"a second namespace named {ns0.name} was created"
    assert error.errno == errno.EEXIST and "File exists" in str(error), f"refused for another reason: {error}"
    assert ns0.inode == before, "the existing namespace was replaced"


@claims("netns/unnamed-not-listed")
def test_unnamed_not_listed(claim, evidence):
    own = os.stat("/proc/self/ns/net").st_ino
    holder = subprocess.Popen(["unshare", "--net", "sleep", "30"])
    try:
        path = f"/proc/{holder.pid}/ns/net"
        inode = wait_for(lambda: (i := os.stat(path).st_ino) != own and i, "unshare to enter a new namespace")
        listed = {name: os.stat(Path("/var/run/netns") / name).st_ino for name in pyroute2_netns.listnetns()}
    finally:
        holder.kill()
        holder.wait()
    evidence.json("named-namespaces", {"unnamed_inode": inode, "listed": listed})
    assert inode not in listed.values(), f"the unnamed namespace {inode} is listed as {listed}"


@claims("netns/exec-runs-inside")
def test_exec_runs_inside(claim, namespaces, evidence):
    ns0 = namespaces("ns0")
    result = subprocess.run(["ip", "netns", "exec", ns0.name, "stat", "-L", "-c", "%i", "/proc/self/ns/net"],
                            capture_output=True, text=True, timeout=10, check=False)
    evidence.text("ip-netns-exec", f"exit {result.returncode}\n{result.stdout}{result.stderr}")
    assert result.returncode == 0, f"ip netns exec failed: {result.stderr.strip()}"
    assert int(result.stdout) == ns0.inode, f"the command ran in namespace {result.stdout.strip()}, not {ns0.inode}"


@claims("netns/fresh-has-only-lo-down")
def test_fresh_has_only_lo_down(claim, namespaces, evidence):
    links = namespaces("ns0", fresh=True).links()
    note = fallback_note(links)
    evidence.json("netlink-links", {"links": links, "note": note})
    assert made_links(links) == ["lo"], f"a new namespace holds {made_links(links)} ({note})"
    assert not links["lo"]["flags"] & IFF_UP, "lo is up in a new namespace"


@claims("netns/loopback-unreachable-until-up")
def test_loopback_unreachable_until_up(claim, namespaces, evidence):
    ns0 = namespaces("ns0", fresh=True)
    try:
        before = ns0.pings("127.0.0.1")
    except OSError as exc:
        before = exc
    ns0.up("lo")
    after = ns0.pings("127.0.0.1")
    evidence.text("ping-127.0.0.1", f"lo down: {before!r}\nlo up: replied={after}")
    assert isinstance(before, OSError) and before.errno == errno.ENETUNREACH, (
        f"with lo down, ping 127.0.0.1 gave {before!r}, not 'Network is unreachable'"
    )
    assert after, f"with lo up, 127.0.0.1 did not answer ({echo_blockers(ns0)})"


@claims("netns/own-resources")
def test_own_resources(claim, namespaces, evidence):
    a, b = namespaces("a"), namespaces("b")
    variant = firewall.variant_on_path()
    assert variant, "no iptables on PATH to show per-namespace rules (apt-get install iptables)"
    a.add_veth("res0", "res1")
    a.up("res0", "192.0.2.1/24")
    with a.iproute() as ipr:
        index = ipr.link_lookup(ifname="res0")[0]
        ipr.route("add", dst="198.51.100.0/24", gateway="192.0.2.254")
        ipr.neigh("add", dst="192.0.2.77", lladdr="02:00:00:00:00:77", ifindex=index, state="permanent")
    rule = "INPUT -s 192.0.2.99/32 -j DROP"
    firewall.change(a, variant, "filter", "-A", rule)

    def resources(ns: Netns) -> dict:
        return {
            "links": sorted(ns.links()),
            "routes": sorted(r["dst"] for r in ns.routes()),
            "neighbours": sorted(str(n["dst"]) for n in ns.neighbours()),
            "rules": firewall.rules(firewall.save(ns, variant, "filter")),
        }

    seen = {"a": resources(a), "b": resources(b)}
    evidence.json("resources", seen)
    assert "res0" in seen["a"]["links"] and "198.51.100.0/24" in seen["a"]["routes"], "control: a lacks its own"
    assert "192.0.2.77" in seen["a"]["neighbours"] and f"-A {rule}" in seen["a"]["rules"], "control: a lacks its own"
    assert "res0" not in seen["b"]["links"], "b sees a's interface"
    assert "198.51.100.0/24" not in seen["b"]["routes"], "b sees a's route"
    assert "192.0.2.77" not in seen["b"]["neighbours"], "b sees a's neighbour entry"
    assert f"-A {rule}" not in seen["b"]["rules"], "b has a's iptables rule"


@claims("netns/veth-created-down")
def test_veth_created_down(claim, namespaces, evidence):
    ns0 = namespaces("ns0", fresh=True)
    with ns0.iproute() as ipr:
        ipr.link("add", kind="veth")
    links = ns0.links()
    evidence.json("netlink-links", links)
    assert {"veth0", "veth1"} <= set(links), f"the unnamed pair is called {sorted(set(links) - {'lo'})}"
    veth0, veth1 = links["veth0"], links["veth1"]
    assert (veth0["link"], veth1["link"]) == (veth1["index"], veth0["index"]), "veth0 and veth1 are not peers"
    assert not (veth0["flags"] | veth1["flags"]) & IFF_UP, "a new veth end is up"


@claims("netns/veth-pair-carries-frames")
def test_veth_pair_carries_frames(claim, namespaces, evidence):
    a, b = namespaces("a"), namespaces("b")
    a.add_veth("veth0", "veth1", peer_netns=b)
    a.up("veth0")
    b.up("veth1")
    # A frame sent before the kernel reports both ends' carrier is dropped; on a busy machine that takes a moment.
    wait_for(lambda: a.links()["veth0"]["operstate"] == b.links()["veth1"]["operstate"] == "UP",
             "the veth ends to be up")
    mac = {"veth0": a.links()["veth0"]["address"], "veth1": b.links()["veth1"]["address"]}
    arrived = {}
    for (src_ns, src), (dst_ns, dst) in (((a, "veth0"), (b, "veth1")), ((b, "veth1"), (a, "veth0"))):
        marker = f"{src}->{dst}".encode()
        with Capture(dst_ns, dst) as capture:
            inject(src_ns, src, _frame(mac[src], mac[dst], marker))
            arrived[marker.decode()] = bool(capture.wait(_carrying(marker)))
        evidence.pcap(f"{dst}-capture", capture)
    evidence.json("frames-arrived", arrived)
    assert all(arrived.values()), f"frames that did not come out of the other end: {arrived}"


@claims("netns/veth-exactly-two-ends")
def test_veth_exactly_two_ends(claim, namespaces, evidence):
    a, b = namespaces("a"), namespaces("b")
    a.add_veth("veth0", "veth1", peer_netns=b)
    end0, end1 = a.links()["veth0"], b.links()["veth1"]
    a.delete("veth0")
    left = b.links()
    evidence.json("ends", {"veth0": end0, "veth1": end1, "b_after_deleting_veth0": left})
    assert (end0["link"], end1["link"]) == (end1["index"], end0["index"]), "the two ends do not name each other"
    assert "veth1" not in left, "veth1 outlived its peer"


@claims("netns/moved-device-leaves-old")
def test_moved_device_leaves_old(claim, namespaces, evidence):
    a, b = namespaces("a"), namespaces("b")
    a.add_veth("veth0", "veth1")
    mac = a.links()["veth0"]["address"]
    refused = _move(a, "veth0", b)
    after = {"a": sorted(a.links()), "b": b.links()}
    evidence.json("after-move", {"refused": repr(refused), **after})
    assert refused is None, f"moving veth0 was refused: {refused}"
    assert "veth0" not in after["a"], "veth0 is still visible in the namespace it left"
    assert after["b"].get("veth0", {}).get("address") == mac, "veth0 did not arrive with its MAC address"


def _refused_to_move(namespaces, evidence, ifname: str, **create) -> None:
    a, b = namespaces("a"), namespaces("b")
    if create:
        with a.iproute() as ipr:
            ipr.link("add", ifname=ifname, **create)
    refused = _move(a, ifname, b)
    evidence.text("move", f"move {ifname}: {refused!r}")
    assert refused is not None, f"the kernel moved {ifname} to another namespace"
    # dev_change_net_namespace refuses a netns-local device with EINVAL; any other error is another refusal
    # (a name taken in the target, a permission), which says nothing about whether the device can move
    assert refused.code == errno.EINVAL, (
        f"moving {ifname} was refused with {errno.errorcode.get(refused.code, refused.code)} ({refused}), not the "
        f"kernel's EINVAL for a netns-local device")
    assert ifname in a.links(), f"{ifname} left its namespace although the move was refused"


@claims("netns/lo-not-movable")
def test_lo_not_movable(claim, namespaces, evidence):
    _refused_to_move(namespaces, evidence, "lo")


@claims("netns/bridge-not-movable")
def test_bridge_not_movable(claim, namespaces, evidence):
    _refused_to_move(namespaces, evidence, "br0", kind="bridge")


VNI = 42  # the vxlan device's id in test_vxlan_not_movable


def _vxlan_id(netns: Netns, ifname: str) -> int | None:
    """The VNI (IFLA_VXLAN_ID) of vxlan device *ifname* in *netns*, read by netlink."""
    with netns.iproute() as ipr:
        (link,) = ipr.get_links(ipr.link_lookup(ifname=ifname)[0])
    data = (link.get("IFLA_LINKINFO") or {}).get("IFLA_INFO_DATA") or {}
    return data.get("IFLA_VXLAN_ID")


@claims("netns/vxlan-not-movable")
def test_vxlan_not_movable(claim, namespaces, evidence):
    a, b = namespaces("a"), namespaces("b")
    with a.iproute() as ipr:
        ipr.link("add", ifname="vx0", kind="vxlan", vxlan_id=VNI, vxlan_port=4789)
    before = _vxlan_id(a, "vx0")
    refused = _move(a, "vx0", b)
    after = {"a": sorted(a.links()), "b": b.links()}
    vni = _vxlan_id(b, "vx0") if "vx0" in after["b"] else None
    evidence.json("after-move", {"refused": repr(refused), "vni_before": before, "vni_in_target": vni, **after})
    assert before == VNI, f"control: vx0 was made with VNI {VNI} but reports {before}"
    if refused is None:  # the corrected expectation: it moved, whole
        assert "vx0" not in after["a"] and "vx0" in after["b"], "vx0 was moved but is not (only) in the target"
        assert after["b"]["vx0"]["link_netnsid"] is not None, "vx0 forgot the namespace it came from"
        assert vni == VNI, f"vx0 arrived in the target with VNI {vni}, not the {VNI} it was made with"
    article_claim(refused is not None, "the kernel moved vx0 to another namespace: vxlan devices are movable")


def _article_pair(namespaces):
    """The article's experiment: ns0/veth0 10.0.0.1/24 and ns1/veth1 10.0.0.2/24, both up."""
    ns0, ns1 = namespaces("ns0"), namespaces("ns1")
    ns0.add_veth("veth0", "veth1", peer_netns=ns1)
    ns0.up("veth0", "10.0.0.1/24")
    ns1.up("veth1", "10.0.0.2/24")
    return ns0, ns1


@claims("netns/veth-connects-namespaces")
def test_veth_connects_namespaces(claim, namespaces, evidence):
    ns0, ns1 = _article_pair(namespaces)
    replied = ns1.pings("10.0.0.1")
    ends = {"veth0": ns0.links()["veth0"], "veth1": ns1.links()["veth1"]}
    evidence.json("veth-ends", {**ends, "ping_10.0.0.1_from_ns1": replied})
    assert replied, f"ns1 got no answer from 10.0.0.1 (in ns0: {echo_blockers(ns0)})"
    assert all(end["link_netnsid"] is not None for end in ends.values()), "an end does not record its peer's namespace"


@claims("netns/rename-needs-down")
def test_rename_needs_down(claim, namespaces, evidence):
    ns0, _ = _article_pair(namespaces)
    with ns0.iproute() as ipr:
        try:
            ipr.link("set", index=ipr.link_lookup(ifname="veth0")[0], ifname="eth0")
            refused = None
        except NetlinkError as exc:
            refused = exc
    evidence.text("rename-while-up", repr(refused))
    assert refused is not None, "the kernel renamed veth0 while it was up"
    assert refused.code == errno.EBUSY, f"refused for another reason: {refused}"


@claims("netns/rename-keeps-configuration")
def test_rename_keeps_configuration(claim, namespaces, evidence):
    ns0, ns1 = _article_pair(namespaces)
    before = ns0.links()["veth0"]
    with ns0.iproute() as ipr:
        ipr.link("set", index=before["index"], state="down")
        ipr.link("set", index=before["index"], ifname="eth0")
    ns0.up("eth0")
    after = ns0.links().get("eth0")
    addresses = ns0.addresses()
    replied = ns1.pings("10.0.0.1")
    evidence.json("rename", {"before": before, "after": after, "addresses": addresses, "ping": replied})
    assert after is not None, "there is no eth0 after the rename"
    assert {k: after[k] for k in ("index", "address", "link")} == {k: before[k] for k in ("index", "address", "link")}
    assert "10.0.0.1/24" in addresses, f"eth0 lost 10.0.0.1/24: {addresses}"
    assert replied, f"ns1 gets no answer from 10.0.0.1 after the rename (in ns0: {echo_blockers(ns0)})"


@claims("netns/bridge-joins-many")
def test_bridge_joins_many(claim, namespaces, evidence):
    hub, leaves = _bridged(namespaces)
    results = {
        f"n{i + 1}->10.0.0.{j + 1}": leaf.pings(f"10.0.0.{j + 1}")
        for i, leaf in enumerate(leaves) for j in range(len(leaves)) if i != j
    }
    evidence.json("pings", results)
    assert all(results.values()), (
        f"pairs that could not reach each other: {[k for k, v in results.items() if not v]} (bridge filters in the "
        f"hub: {bridge_filters(hub) or 'none'}; in n1: {echo_blockers(leaves[0])})")


@claims("netns/bridge-forwards-layer2")
def test_bridge_forwards_layer2(claim, namespaces, evidence):
    hub, (n1, n2, n3) = _bridged(namespaces)
    mac = {n: n.links()["eth0"]["address"] for n in (n1, n2, n3)}
    with Capture(n2, "eth0") as at2, Capture(n3, "eth0") as at3:
        inject(n1, "eth0", _frame(mac[n1], BROADCAST, b"flood"))
        flooded = [bool(at2.wait(_carrying(b"flood"))), bool(at3.wait(_carrying(b"flood")))]
        inject(n2, "eth0", _frame(mac[n2], BROADCAST, b"learn"))  # the bridge learns n2's MAC behind its port
        learnt = bool(at3.wait(_carrying(b"learn")))
        inject(n1, "eth0", _frame(mac[n1], mac[n2], b"unicast"))
        delivered = bool(at2.wait(_carrying(b"unicast")))
        # A fence instead of a silence: frames from one port leave the bridge in the order they came, so once
        # a broadcast sent after the unicast has reached n3, a leaked copy would have too (the grace covers
        # the two being taken by different CPUs).
        inject(n1, "eth0", _frame(mac[n1], BROADCAST, b"fence"))
        fenced = bool(at3.wait(_carrying(b"fence")))
        time.sleep(FENCE_GRACE_S)
        leaked = bool(at3.packets(_carrying(b"unicast")))
        evidence.pcap("n2-eth0", at2)
        evidence.pcap("n3-eth0", at3)
    evidence.json("frames", {"broadcast_reached_n2_n3": flooded, "learnt": learnt,
                             "unicast_to_n2": delivered, "fence_reached_n3": fenced, "unicast_leaked_to_n3": leaked})
    assert all(flooded), (f"a non-IP broadcast did not reach every other port (n2, n3): {flooded}; bridge "
                          f"filters in the hub: {bridge_filters(hub) or 'none'}")
    assert learnt and delivered, "a frame to n2's MAC did not reach n2"
    assert fenced, "a broadcast sent after the unicast did not reach n3, so n3's silence proves nothing"
    assert not leaked, "a frame to a learnt MAC was also sent to another port"


@claims("netns/bridge-takes-address-and-mac")
def test_bridge_takes_address_and_mac(claim, namespaces, evidence):
    hub, (n1, *_) = _bridged(namespaces)
    chosen = "02:cf:00:00:00:fe"
    with hub.iproute() as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname="br0")[0], address=chosen)
    hub.up("br0", "10.0.0.254/24")
    replied = n1.pings("10.0.0.254")
    answered_from = {str(n["dst"]): n["lladdr"] for n in n1.neighbours()}.get("10.0.0.254")
    evidence.json("bridge", {"br0": hub.links()["br0"], "ping": replied, "n1_neighbour_10.0.0.254": answered_from})
    assert hub.links()["br0"]["address"] == chosen, "the bridge did not take the MAC address"
    assert replied, f"the bridge does not answer at 10.0.0.254 (in the hub: {echo_blockers(hub)})"
    assert answered_from == chosen, f"10.0.0.254 answered from {answered_from}, not {chosen}"


@claims("netns/needs-privilege")
def test_needs_privilege(claim, run, evidence):
    """Both steps of `ip netns add` need privilege: the namespace itself (unshare(2), CAP_SYS_ADMIN) and the
    mount that names it; each must be refused with EPERM, "Operation not permitted", not fail otherwise."""
    name = run.name("unprivileged")
    attempts = {argv[0]: subprocess.run(argv, user=NOBODY, group=NOBODY, extra_groups=[], capture_output=True,
                                        text=True, timeout=10, check=False)
                for argv in (["ip", "netns", "add", name], ["unshare", "--net", "true"])}
    created = name in pyroute2_netns.listnetns()
    if created:
        pyroute2_netns.remove(name)
    evidence.text("as-nobody", "\n".join(f"# {' '.join(r.args)}: exit {r.returncode}\n{r.stderr}"
                                          for r in attempts.values()))
    assert not created, f"an unprivileged user created the named namespace {name}"
    for attempt in attempts.values():
        assert attempt.returncode != 0, f"{' '.join(attempt.args)} succeeded as an unprivileged user"
        assert os.strerror(errno.EPERM) in attempt.stderr, (
            f"{' '.join(attempt.args)} failed, but not with EPERM: {attempt.stderr.strip()}")


@claims("netns/no-namespace-by-default")
def test_no_namespace_by_default(claim, evidence):
    """Every process runs in a network namespace, whether or not anyone created one: at boot, the initial one
    (PID 1's; when the suite may not open that, its own).  `ip netns list` shows only the namespaces given a
    name under /run/netns, so an empty list says nothing about how many exist."""
    path = "/proc/1/ns/net" if os.access("/proc/1/ns/net", os.R_OK) else "/proc/self/ns/net"
    existing = Netns(path)
    links = existing.links()
    listed = {name: os.stat(Path("/var/run/netns") / name).st_ino for name in pyroute2_netns.listnetns()}
    evidence.json("existing-namespace", {"path": path, "inode": existing.inode, "links": sorted(links),
                                         "named": listed})
    assert "lo" in links, f"the network namespace of {path} has no lo: {sorted(links)}"
    assert path == "/proc/self/ns/net" or existing.inode not in listed.values(), (
        f"the initial namespace is listed as a named one: {listed}")
    article_claim(False, f"a network namespace exists without any being created: {path}'s ({existing.inode}, "
                         f"with {sorted(links)}), which `ip netns list` does not show")
