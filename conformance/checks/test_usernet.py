"""User-defined networks: their bridges, subnets, static addresses, isolation, `network connect`, drivers, macvlan."""

import ipaddress

import docker
import pytest
from scapy.layers.inet import ICMP, IP

from conformance.lab.capture import Capture
from conformance.lab.icmp import ping
from conformance.plugin import claims

from .helpers import HTTPD_PORT, PROBE_PAGE, bridge_of, httpd, ipv4_of, pings, subnet_network, wget


@claims("usernet/create-makes-bridge")
def test_create_makes_bridge(claim, scope, lab, evidence):
    network = scope.network("test-net", driver="bridge")
    name = bridge_of(network)
    links = lab.engine.netns.links()
    gateway = network.attrs["IPAM"]["Config"][0]["Gateway"]
    prefix = ipaddress.ip_network(network.attrs["IPAM"]["Config"][0]["Subnet"]).prefixlen
    evidence.json("network", {"inspect": network.attrs, "device": links.get(name)})
    assert name in links and links[name]["kind"] == "bridge", f"no Linux bridge {name} for the new network"
    assert name != lab.engine.bridge.name, "the new network reuses the default bridge"
    assert f"{gateway}/{prefix}" in ipv4_of(lab.engine.netns, name), f"{name} does not hold the gateway {gateway}"


@claims("usernet/subnet-and-gateway")
def test_subnet_and_gateway(claim, scope, lab, evidence):
    network, subnet, gateway = subnet_network(scope, lab, "custom", gateway_index=254)
    box = scope.container("box", network=network.name)
    netns = scope.netns(box)
    addresses, routes = ipv4_of(netns), netns.routes()
    on_bridge = ipv4_of(lab.engine.netns, bridge_of(network))
    evidence.json("custom-network", {"subnet": str(subnet), "gateway": gateway, "bridge": on_bridge,
                                     "container": addresses, "routes": routes})
    assert f"{gateway}/{subnet.prefixlen}" in on_bridge, f"the bridge holds {on_bridge}, not the gateway {gateway}"
    assert [ipaddress.ip_interface(a).network for a in addresses] == [subnet], f"the container holds {addresses}"
    assert [r["gateway"] for r in routes if r["dst"] == "default/0"] == [gateway], f"routes: {routes}"


@claims("usernet/static-ip")
def test_static_ip(claim, scope, lab, evidence):
    network, subnet, _ = subnet_network(scope, lab, "static")
    wanted = str(subnet[77])
    config = {network.name: lab.engine.client.api.create_endpoint_config(ipv4_address=wanted)}
    box = scope.container("box", httpd(), network=network.name, networking_config=config)
    client = scope.container("cli", network=network.name)
    scope.wait_listening(box, HTTPD_PORT)
    fetched = wget(scope, client, f"http://{wanted}:{HTTPD_PORT}/")
    evidence.json("static", {"wanted": wanted, "got": ipv4_of(scope.netns(box)), "wget_exit": fetched.exit_code})
    assert ipv4_of(scope.netns(box)) == [f"{wanted}/{subnet.prefixlen}"], "the container did not get the --ip address"
    assert fetched.exit_code == 0 and PROBE_PAGE in fetched.output, f"nothing answers at {wanted}"


@claims("usernet/static-ip-needs-subnet")
def test_static_ip_needs_subnet(claim, scope, lab, evidence):
    network = scope.network("nosubnet", driver="bridge")
    network.reload()
    some_address = str(ipaddress.ip_network(network.attrs["IPAM"]["Config"][0]["Subnet"])[77])
    config = {network.name: lab.engine.client.api.create_endpoint_config(ipv4_address=some_address)}
    with pytest.raises(docker.errors.APIError) as refused:
        scope.container("box", network=network.name, networking_config=config)
    evidence.text("refusal", str(refused.value))
    assert "user specified IP address is supported only when connecting to networks with user configured subnets" in (
        str(refused.value)
    ), f"refused for another reason: {refused.value}"


@claims("usernet/same-network-reach")
def test_same_network_reach(claim, scope, lab, evidence):
    network, _, gateway = subnet_network(scope, lab, "same")
    one = scope.container("one", network=network.name)
    two = scope.container("two", network=network.name)
    results = {
        "one->two": pings(scope, one, scope.address(two, network.name)),
        "two->one": pings(scope, two, scope.address(one, network.name)),
        "one->gateway": pings(scope, one, gateway),
    }
    evidence.json("pings", results)
    assert all(results.values()), f"unanswered: {[k for k, v in results.items() if not v]}"


@claims("usernet/different-networks-isolated")
def test_different_networks_isolated(claim, scope, lab, evidence):
    net1, _, gateway1 = subnet_network(scope, lab, "net1")
    net2, _, _ = subnet_network(scope, lab, "net2")
    one = scope.container("one", network=net1.name)
    two = scope.container("two", network=net2.name)
    other = scope.address(two, net2.name)
    results = {"one->own-gateway": pings(scope, one, gateway1), "one->two": pings(scope, one, other)}
    evidence.json("pings", results)
    assert results["one->own-gateway"], "control: the container does not reach its own gateway"
    assert not results["one->two"], f"a container on {net1.name} reached {other} on {net2.name}"


@claims("usernet/connect-adds-interface")
def test_connect_adds_interface(claim, scope, lab, evidence):
    net1, subnet1, _ = subnet_network(scope, lab, "net1")
    net2, _, _ = subnet_network(scope, lab, "net2")
    server = scope.container("httpd1", httpd(), network=net1.name)
    client = scope.container("cli", network=net2.name)
    scope.wait_listening(server, HTTPD_PORT)
    url = f"http://{scope.address(server, net1.name)}:{HTTPD_PORT}/"
    before = wget(scope, client, url, timeout=3)
    net1.connect(client)
    ip_a = scope.exec(client, "ip", "-o", "-4", "addr").output
    after = wget(scope, client, url)
    added = [a for a in (w for line in ip_a.splitlines() for w in line.split()) if "/" in a
             and ipaddress.ip_interface(a).network == subnet1]
    evidence.text("connect", f"before connect: wget exit {before.exit_code}\n# ip a after connect\n{ip_a}\n"
                             f"after connect: wget exit {after.exit_code}")
    assert before.exit_code != 0, "control: the client reached the server before sharing a network"
    assert added, f"`ip a` shows no address of {subnet1} after `network connect`:\n{ip_a}"
    assert after.exit_code == 0 and PROBE_PAGE in after.output, "the connected container still cannot reach the server"


@claims("usernet/drivers", tier="audit")
def test_drivers(claim, engine, evidence):
    offered = engine.info["Plugins"]["Network"]
    evidence.json("network-plugins", offered)
    assert {"bridge", "overlay", "macvlan"} <= set(offered), f"network drivers offered: {offered}"


@pytest.fixture
def lan(lab, namespaces):
    """Another host on a segment of its own: a veth whose engine end is a macvlan parent; (lan netns, parent, subnet)."""
    parent, far_end = lab.run.ifname("m0"), lab.run.ifname("m1")
    netns = namespaces("lan")
    subnet = lab.free_subnet()
    with lab.engine.netns.veth(parent, far_end, peer_netns=netns):
        lab.engine.netns.up(parent)
        netns.up(far_end, f"{subnet[200]}/{subnet.prefixlen}")
        yield netns, parent, far_end, subnet


@claims("usernet/macvlan-on-parent")
def test_macvlan_on_parent(claim, lan, scope, lab, evidence):
    netns, parent, far_end, subnet = lan
    pool = docker.types.IPAMPool(subnet=str(subnet), gateway=str(subnet[1]))
    network = scope.network("mvl", driver="macvlan", options={"parent": parent},
                           ipam=docker.types.IPAMConfig(pool_configs=[pool]))
    box = scope.container("box", network=network.name)
    address, mac = scope.address(box, network.name), scope.mac(box, network.name)
    with Capture(netns, far_end) as capture:
        replied = ping(netns, address)
    replies = capture.packets(lambda p: ICMP in p and p[ICMP].type == 0 and p[IP].src == address)
    evidence.pcap("lan", capture)
    evidence.json("macvlan", {"parent": parent, "container": address, "mac": mac,
                              "reply_macs": sorted({p.src for p in replies})})
    assert replied, f"the host on the parent's segment got no answer from {address}"
    assert {p.src for p in replies} == {mac}, f"replies came from {sorted({p.src for p in replies})}, not {mac}"
