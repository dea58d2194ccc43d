"""The default bridge network: attachment, addressing, the layer-2 segment, and what outsiders can reach."""

import ipaddress
import json
import socket

import pytest
from packaging.version import Version
from scapy.layers.inet import ICMP, IP, UDP

from conformance.lab.engines import firewall
from conformance.lab.kernel.capture import Capture
from conformance.plugin import article_claim, claims, prerequisite

from .helpers import (
    EXPOSED_PORT,
    HTTPD_PORT,
    SILENCE_S,
    fallback_note,
    host_end,
    ipv4_of,
    made_links,
    peer_via,
    plain_address,
    subnet_network,
)


def _attachment(lab, box) -> dict:
    """Where a container sits: its networks, its eth0 address, the bridge its veth is on, its gateway."""
    box.reload()
    netns = box.netns
    _, link = host_end(lab.engine.netns, netns)
    masters = {link["index"]: name for name, link in lab.engine.netns.links().items()}
    gateways = [r["gateway"] for r in netns.routes() if r["dst"] == "default/0"]
    return {
        "network_mode": box.attrs["HostConfig"]["NetworkMode"],
        "networks": sorted(box.attrs["NetworkSettings"]["Networks"]),
        "bridge": masters.get(link["master"]),
        "eth0": ipv4_of(netns),
        "gateways": gateways,
    }


@pytest.fixture(scope="module")
def pair(standing):
    """The default bridge's topology for the checks that only look at it: (plain, server), one container run
    without --network and one with --network bridge serving HTTP on HTTPD_PORT (standing ones)."""
    return standing("plain", "server")


@claims("bridge/default-mode")
def test_default_mode(claim, pair, lab, evidence):
    unspecified, explicit = (_attachment(lab, box) for box in pair)
    evidence.json("attachments", {"without --network": unspecified, "--network bridge": explicit})
    bridge = lab.engine.bridge
    # The network's name as a container's inspect gives it: "bridge" on Docker ("podman" on Podman, which
    # answers to "bridge" only in /networks); what matters is one network, the same with and without --network.
    assert len(explicit["networks"]) == 1, f"with --network bridge the container joined {explicit['networks']}"
    for key in ("networks", "bridge", "gateways"):
        assert unspecified[key] == explicit[key], f"{key}: {unspecified[key]} without --network, {explicit[key]} with"
    assert unspecified["bridge"] == bridge.name, f"the container's veth is on {unspecified['bridge']}"
    prefixes = {ipaddress.ip_interface(a).network for a in unspecified["eth0"] + explicit["eth0"]}
    assert prefixes == {bridge.network}, f"addresses {unspecified['eth0']} and {explicit['eth0']}"


@claims("bridge/own-namespace")
def test_own_namespace(claim, pair, lab, evidence):
    one, two = pair
    inodes = {"engine": lab.engine.netns.inode, "one": one.netns.inode, "two": two.netns.inode}
    found = one.netns.links()
    links, note = made_links(found), fallback_note(found)
    evidence.json("namespaces", {**inodes, "links_of_one": sorted(found), "note": note})
    assert len(set(inodes.values())) == 3, f"namespaces are shared: {inodes}"
    assert links == ["eth0", "lo"], f"the container's namespace holds {links} ({note})"


@claims("bridge/veth-to-bridge")
def test_veth_to_bridge(claim, pair, lab, evidence):
    box, _ = pair
    inside = box.netns.links()["eth0"]
    name, outside = host_end(lab.engine.netns, box.netns)
    bridge = lab.engine.netns.links()[lab.engine.bridge.name]
    evidence.json("veth-ends", {"eth0": inside, name: outside, "bridge": bridge})
    assert inside["kind"] == "veth" and inside["link_netnsid"] is not None, "eth0 is not a veth with a peer elsewhere"
    assert outside["kind"] == "veth" and outside["link"] == inside["index"], f"{name} is not eth0's peer"
    assert name.startswith("veth"), f"the host end is called {name}, not veth*"
    assert outside["master"] == bridge["index"], f"{name} is not enslaved to {lab.engine.bridge.name}"


@claims("bridge/address-from-subnet")
def test_address_from_subnet(claim, pair, lab, evidence):
    box, _ = pair
    addresses = ipv4_of(box.netns)
    subnet = lab.engine.bridge.network
    evidence.json("eth0", {"addresses": addresses, "subnet": str(subnet), "inspect": box.address()})
    assert len(addresses) == 1, f"eth0 holds {addresses}"
    interface = ipaddress.ip_interface(addresses[0])
    assert interface.network == subnet, f"eth0 holds {interface}, not an address of {subnet}"
    assert str(interface.ip) == box.address(), "netlink and the engine disagree on the address"


@claims("bridge/gateway-is-bridge")
def test_gateway_is_bridge(claim, pair, lab, evidence):
    """Per address family: the IPv4 default route via the bridge's IPv4 address (which must answer), and an
    IPv6 default route, where the engine gives one (--ipv6), via an IPv6 address the bridge itself holds."""
    box, _ = pair
    routes = box.netns.routes()
    gateway, bridge = lab.engine.bridge.gateway, lab.engine.bridge.name
    held_v6 = _addresses(lab.engine.netns, bridge, socket.AF_INET6)
    replied = box.ping(gateway).exit_code == 0
    defaults = {family: [r["gateway"] for r in routes if r["dst"] == "default/0" and r["family"] == family]
                for family in (socket.AF_INET, socket.AF_INET6)}
    evidence.json("routes", {"routes": routes, "bridge_address": gateway, "bridge_ipv6": held_v6, "ping": replied})
    assert defaults[socket.AF_INET] == [gateway], (
        f"IPv4 default route via {defaults[socket.AF_INET]}, not {bridge}'s address {gateway}: {routes}")
    assert all(g in held_v6 for g in defaults[socket.AF_INET6]), (
        f"IPv6 default route via {defaults[socket.AF_INET6]}, which {bridge} does not hold ({held_v6})")
    assert replied, f"the container gets no answer from its gateway {gateway}"


@claims("bridge/address-by-dhcp")
def test_address_by_dhcp(claim, scope, lab, evidence):
    bridge = lab.engine.bridge
    # Podman makes its bridge only when the first container joins it: then every interface of the engine's
    # namespace is watched, the bridge included once it appears
    on = bridge.name if bridge.name in lab.engine.netns.links() else None
    with Capture(lab.engine.netns, on) as capture:
        box = scope.container("first-instant", ["ip", "-o", "-4", "addr", "show", "eth0"])
        box.wait(timeout=15)
        first_output = box.logs().decode(errors="replace")
    dhcp = capture.packets(lambda p: UDP in p and {p[UDP].sport, p[UDP].dport} & {67, 68})
    evidence.pcap("bridge" if on else "engine-namespace", capture)
    evidence.text("eth0-at-start", first_output)
    found = [w for w in first_output.split() if "/" in w and ipaddress.ip_interface(w).network == bridge.network]
    assert found, f"the container's first command saw no address of {bridge.network} on eth0: {first_output!r}"
    article_claim(bool(dhcp), f"no DHCP message crossed {bridge.name}; eth0 held {found[0]} from the first instant")


@claims("bridge/distinct-addresses")
def test_distinct_addresses(claim, pair, evidence):
    """As the containers' own eth0 has them (netlink), beside what the engine reports."""
    b1, b2 = pair
    seen = {box.name: (ipv4_of(box.netns), box.netns.links()["eth0"]["address"]) for box in (b1, b2)}
    evidence.json("addresses", {"eth0": seen, "inspect": {box.name: (box.address(), box.mac())
                                                          for box in (b1, b2)}})
    (ip1, mac1), (ip2, mac2) = seen.values()
    assert ip1 != ip2, f"both containers hold {ip1} on eth0"
    assert mac1 != mac2, f"both containers' eth0 has the MAC {mac1}"


@claims("bridge/containers-reach-each-other")
def test_containers_reach_each_other(claim, pair, evidence):
    client, server = pair
    address, own = server.address(), client.address()
    replied = client.ping(address).exit_code == 0
    fetched = client.fetch(f"http://{address}:{HTTPD_PORT}/cgi-bin/peer")
    peer = plain_address(fetched.output) if fetched.exit_code == 0 else None
    evidence.text("client-to-server", f"ping {address}: {replied}\nwget: exit {fetched.exit_code}\n{fetched.output}")
    assert replied, f"no answer from {address}"
    assert fetched.exit_code == 0, f"wget {address}:{HTTPD_PORT}: {fetched.output}"
    assert peer == own, f"the server saw the peer {peer}, not the client's own address {own} (NAT between them)"


@claims("bridge/one-layer2-segment")
def test_one_layer2_segment(claim, pair, evidence):
    client, server = pair
    address, sender = server.address(), client.address()
    sender_mac = client.netns.links()["eth0"]["address"]
    with server.capture() as capture:
        replied = client.ping(address).exit_code == 0
    requests = capture.packets(lambda p: ICMP in p and p[ICMP].type == 8 and p[IP].src == sender)
    neighbours = {str(n["dst"]): n["lladdr"] for n in server.netns.neighbours()}
    evidence.pcap("server-eth0", capture)
    evidence.json("server-neighbours", neighbours)
    assert replied and requests, f"no echo request from {sender} reached the server"
    assert {(p.src, p[IP].ttl) for p in requests} == {(sender_mac, 64)}, (
        f"frames arrived as (MAC, TTL) {sorted({(p.src, p[IP].ttl) for p in requests})}; "
        f"the sender is {sender_mac} with TTL 64"
    )
    assert neighbours.get(sender) == sender_mac, f"the server's neighbour entry for {sender}: {neighbours.get(sender)}"


@pytest.fixture
def outside_target(scope, lab):
    """A container serving an unpublished port and a port published at the engine's outward address (so the
    daemon's --ip does not move it), which the upstream must reach: the prerequisite (and the proof that the
    outsider can see a presence) of bridge/not-addressable-from-outside; (box, host port, the peer it saw)."""
    host_port = lab.free_port()
    serve_both = f"httpd -p {EXPOSED_PORT} -h /www && exec httpd -f -p {HTTPD_PORT} -h /www"
    box = scope.container("srv", ["sh", "-c", serve_both],
                          ports={f"{HTTPD_PORT}/tcp": (lab.upstream.engine_addr, host_port)})
    box.wait_listening(HTTPD_PORT)
    box.wait_listening(EXPOSED_PORT)
    try:
        mapped = peer_via(lab, host_port)
    except AssertionError as exc:
        prerequisite(False, f"the published port, which an outside host must reach to show it reaches anything: "
                            f"{exc}")
    return box, host_port, mapped


@claims("bridge/not-addressable-from-outside")
def test_not_addressable_from_outside(claim, outside_target, lab, evidence):
    box, host_port, mapped = outside_target
    address, upstream = box.address(), lab.upstream
    with upstream.netns.iproute() as ipr:  # the outsider even gets a route to the bridge subnet through the engine
        ipr.route("add", dst=str(lab.engine.bridge.network), gateway=upstream.engine_addr)
        try:
            direct = upstream.netns.reachable(address, EXPOSED_PORT, timeout=SILENCE_S)
        finally:
            ipr.route("del", dst=str(lab.engine.bridge.network), gateway=upstream.engine_addr)
    evidence.text("from-upstream", f"{address}:{EXPOSED_PORT} (unpublished, routed): connected={direct}\n"
                                   f"{upstream.engine_addr}:{host_port} (published): peer {mapped}")
    assert not direct, (f"an outside host reached the unpublished {address}:{EXPOSED_PORT} through a route: "
                        f"{_routed_access_cause(lab.engine)}")
    assert mapped == upstream.upstream_addr, f"the published port reached the container as {mapped}"


@claims("bridge/mtu-follows-network")
def test_mtu_follows_network(claim, pair, lab, evidence):
    box, _ = pair
    eth0 = box.netns.links()["eth0"]
    evidence.json("eth0", {"eth0": eth0, "network_mtu": lab.engine.bridge.mtu})
    assert eth0["mtu"] == lab.engine.bridge.mtu, f"eth0 MTU {eth0['mtu']}, the network's {lab.engine.bridge.mtu}"


def _addresses(netns, ifname: str, family: int) -> list[str]:
    """The addresses (no prefix) an interface holds in one family, read by netlink."""
    with netns.iproute() as ipr:
        index = ipr.link_lookup(ifname=ifname)
        return [a.get("IFA_ADDRESS") for a in ipr.get_addr(family=family, index=index[0])] if index else []


ROUTED_ACCESS_FILTERED = Version("28.0")  # moby c9fdeaf70e: `-A DOCKER ! -i docker0 -o docker0 -j DROP`


def _routed_access_cause(engine) -> str:
    """Why routed traffic reached an unpublished port, from what the engine's namespace holds: the FORWARD
    policy, whether the engine filters routed access itself (Docker >= 28.0), and rules accepting the
    traffic ahead of Docker's."""
    version, options = engine.version.get("Version", "?"), engine.options
    if engine.firewall_backend == "nftables":
        return _nftables_forward_cause(engine)
    if not options["iptables"] or engine.iptables_variant is None:
        return "the daemon writes no firewall rules (--iptables=false, or no iptables on its PATH)"
    dump = firewall.save(engine.netns, engine.iptables_variant, "filter")
    policy = next((line.split()[1] for line in dump.splitlines() if line.startswith(":FORWARD ")), "?")
    if "NETAVARK" in dump:
        # netavark 1.4's NETAVARK_FORWARD admits only `-d SUBNET --ctstate RELATED,ESTABLISHED` and `-s SUBNET`
        # (src/firewall/varktables/types.rs, get_network_chains): no new inbound connection; it drops none either
        return (f"FORWARD policy {policy}: netavark (Podman) sets no policy and adds no rule that drops a routed "
                f"new connection to its networks (its NETAVARK_FORWARD admits only related or established "
                f"traffic to a network and traffic from it), so only a DROP policy stops it" if policy == "ACCEPT"
                else f"FORWARD policy {policy}, yet the connection was admitted: rules ahead of netavark's? "
                     f"{[r for r in firewall.rules(dump) if r.startswith('-A FORWARD ')]}")
    subnet = engine.bridge.subnet
    ahead = [r for table in ("raw", "filter") for r in firewall.rules(firewall.save(engine.netns,
                                                                                  engine.iptables_variant, table))
             if r.startswith(("-A PREROUTING ", "-A FORWARD ")) and firewall.value(r, "-j") == "ACCEPT"
             and firewall.value(r, "-d") == subnet]
    try:
        old = Version(version.split("+")[0].split("-")[0]) < ROUTED_ACCESS_FILTERED
    except ValueError:
        old = False
    causes = []
    if ahead:
        causes.append(f"rules accept traffic to {subnet} ahead of Docker's: {ahead}")
    if old and policy == "ACCEPT":
        causes.append(f"FORWARD policy ACCEPT, and Docker {version} (< {ROUTED_ACCESS_FILTERED}) adds no filter rule "
                      "for routed access to unpublished ports, so only a DROP policy stops it; dockerd sets DROP "
                      "only when it turns forwarding on itself, not when forwarding was on before it started")
    if not causes:
        causes.append(f"no cause found in the rules: FORWARD policy {policy}, Docker {version}")
    return "; ".join(causes)


def _nftables_forward_cause(engine) -> str:
    """The forward-hook base chains of the engine's nftables ruleset and their policies, for the message of an
    engine on the nftables backend, whose rules the iptables dump would not show."""
    result = engine.netns.run("nft", "-j", "list", "chains")
    if result.returncode != 0:
        return f"firewall backend nftables, and `nft -j list chains` failed: {result.stderr.strip()}"
    chains = [item["chain"] for item in json.loads(result.stdout)["nftables"] if "chain" in item]
    forward = [f"{c['family']} {c['table']} {c['name']} policy {c.get('policy', '?')}" for c in chains
               if c.get("hook") == "forward"]
    accepting = [c for c in forward if c.endswith("policy accept")]
    return (f"firewall backend nftables: forward-hook chains {forward or 'none'}; "
            + (f"{accepting} accept what no rule drops, and no rule of Docker's table ip docker-bridges dropped "
               f"this routed connection to an unpublished port" if accepting else
               "every forward-hook chain's policy drops, so a rule accepted the connection ahead of them"))


def _first_on_empty_network(scope, lab, suffix: str, count: int = 1):
    """*count* containers started one after the other on the default bridge when nothing holds an address
    there, else on a fresh network of the same driver; (boxes, network name, its subnet)."""
    netns, bridge = lab.engine.netns, lab.engine.bridge
    links = netns.links()
    network, subnet = "bridge", bridge.network
    if any(link["master"] == links[bridge.name]["index"] for link in links.values()):
        fresh, subnet, _ = subnet_network(scope, lab, f"{suffix}net")
        network = fresh.name
    return [scope.container(f"{suffix}{i}", network=network) for i in range(count)], network, subnet


def _mac_from(address: str) -> str:
    return "02:42:" + ":".join(f"{byte:02x}" for byte in ipaddress.ip_address(address).packed)


@claims("bridge/first-container-address")
def test_first_container_address(claim, scope, lab, evidence):
    """The first address the engine may give is the range's first that is neither the subnet's network nor its
    broadcast address nor the gateway: .2 under the defaults, .1 with --bip=...254/24, the --fixed-cidr range's
    first with one (the range is inspect's IPRange)."""
    (box,), network, subnet = _first_on_empty_network(scope, lab, "first")
    if network == "bridge":
        configs = (lab.engine.bridge_network.get("IPAM") or {}).get("Config") or []
        config = next((c for c in configs if ipaddress.ip_network(c.get("Subnet", "::/0")) == subnet), {})
        gateway, pool = lab.engine.bridge.gateway, ipaddress.ip_network(config.get("IPRange") or subnet)
    else:  # a fresh network of the suite's, its gateway the subnet's first address (subnet_network)
        gateway, pool = str(subnet[1]), subnet
    reserved = {subnet.network_address, subnet.broadcast_address, ipaddress.ip_address(gateway)}
    first = next(address for address in pool if address not in reserved)
    held = ipv4_of(box.netns)
    expected = f"{first}/{subnet.prefixlen}"
    evidence.json("first-container", {"network": network, "subnet": str(subnet), "range": str(pool),
                                      "gateway": gateway, "eth0": held, "inspect": box.address(network)})
    assert held == [expected], (f"the first container on {network} ({subnet}, addresses from {pool}, gateway "
                                f"{gateway}) holds {held} on eth0, not {expected}")


def _addresses_and_macs(scope, lab, evidence) -> dict[str, tuple[str, str]]:
    """Two containers on an empty network: {name: (IPv4 address, MAC)} of their eth0, by netlink."""
    boxes, network, _ = _first_on_empty_network(scope, lab, "mac", count=2)
    seen = {box.name: (ipv4_of(box.netns)[0].split("/")[0], box.netns.links()["eth0"]["address"])
            for box in boxes}
    evidence.json("eth0", {"network": network, "address_and_mac": seen})
    return seen


@claims("bridge/mac-from-address")
def test_mac_from_address(claim, scope, lab, evidence):
    seen = _addresses_and_macs(scope, lab, evidence)
    wrong = {name: (ip, mac) for name, (ip, mac) in seen.items() if mac != _mac_from(ip)}
    assert not wrong, f"eth0's MAC is not 02:42 and the IPv4 address: {wrong}"


@claims("bridge/mac-from-address-docker28")
def test_mac_from_address_docker28(claim, scope, lab, evidence):
    seen = _addresses_and_macs(scope, lab, evidence)
    macs = [mac for _, mac in seen.values()]
    first = [int(mac.split(":")[0], 16) for mac in macs]
    assert all(octet & 0x02 and not octet & 0x01 for octet in first), f"not locally administered unicast: {macs}"
    assert len(set(macs)) == 2, f"both containers have the MAC {macs[0]}"
    derived = [(ip, mac) for ip, mac in seen.values() if mac == _mac_from(ip)]
    article_claim(bool(derived) and len(derived) == len(seen),
                  f"the MACs {macs} are random, not 02:42 and the IPv4 address as the article shows")
