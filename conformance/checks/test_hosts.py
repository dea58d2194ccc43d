"""Claims across hosts, checked between two private engines on a segment of the suite's
(conformance/lab/engines/two_hosts.py).

Host A and host B are engines in namespaces of their own whose only NIC (eth0) is a port of one bridge,
so whatever one sends the other receives across that segment, where the captures listen.  The lab starts
once per run; the checks here share it, and a module's worth of containers on it (an overlay pair, a web
server on host A's default bridge with a client on host B); what a check changes is its own.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import docker
import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

from conformance.lab.engines.two_hosts import SEGMENT_IF, VXLAN_PORT
from conformance.plugin import claims

from .helpers import EXPOSED_PORT, HTTPD_PORT, SILENCE_S, httpd, plain_address

SERVICE_PORT = 8083  # a web server in host B's own namespace (host mode): a service on another node
# A container that joins the overlay on one host is known to the other once the swarm's gossip has spread
# its entry (well under a second here); an exchange across the overlay is retried for this long.
CONVERGE_S = 10
PUBLISHED_PORT = HTTPD_PORT + 1  # -p PUBLISHED_PORT:HTTPD_PORT
UNPUBLISHED_PORT = HTTPD_PORT + 2  # a port the web server listens on that nothing publishes


@pytest.fixture
def on(hosts):
    """This check's containers on host A and host B, removed when it ends."""
    with hosts.a.scope() as a, hosts.b.scope() as b:
        yield a, b


@pytest.fixture(scope="module")
def shared_on(hosts):
    """The module's shared topology on host A and host B (checks only read it), removed after the module."""
    with hosts.a.scope() as a, hosts.b.scope() as b:
        yield a, b


@pytest.fixture(scope="module")
def overlay_pair(hosts, shared_on):
    """A web server on host B and a client on host A, both on the overlay network: (server, client)."""
    a, b = shared_on
    server, client = _at_once(lambda: b.container("srv", httpd(), network=hosts.overlay),
                              lambda: a.container("cli", network=hosts.overlay))
    server.wait_listening(HTTPD_PORT)
    return server, client


@pytest.fixture(scope="module")
def web(shared_on):
    """On host A's default bridge, a web server on HTTPD_PORT (published as PUBLISHED_PORT), EXPOSED_PORT
    (published by -P) and UNPUBLISHED_PORT; on host B's, a client: (server, client)."""
    a, b = shared_on
    also = " && ".join(" ".join(httpd(port)).replace(" -f", "") for port in (EXPOSED_PORT, UNPUBLISHED_PORT))
    server, client = _at_once(
        lambda: a.container("web", ["sh", "-c", f"{also} && exec {' '.join(httpd())}"],
                            ports={f"{HTTPD_PORT}/tcp": PUBLISHED_PORT}, publish_all_ports=True),
        lambda: b.container("cli"))
    for port in (HTTPD_PORT, EXPOSED_PORT, UNPUBLISHED_PORT):
        server.wait_listening(port)
    return server, client


def _peer(client, address: str, port: int) -> tuple[int, str]:
    """GET /cgi-bin/peer at address:port from *client*: (wget's exit code, the peer the server saw)."""
    result = client.fetch(f"http://{address}:{port}/cgi-bin/peer")
    return result.exit_code, plain_address(result.output) if result.exit_code == 0 else result.output.strip()


def _at_once(*calls):
    """Run *calls* (containers to start on the two hosts) at once; their results, in order."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [future.result() for future in [pool.submit(call) for call in calls]]


def _eventually(attempt, timeout: float = CONVERGE_S):
    """*attempt()* (an ExecResult) until it succeeds or *timeout* has passed; the last result."""
    deadline = time.monotonic() + timeout
    while (result := attempt()).exit_code != 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    return result


def _bare(packet, addresses: set[str]) -> bool:
    """An IPv4 packet on the segment whose own header carries one of *addresses*."""
    return IP in packet and (packet[IP].src in addresses or packet[IP].dst in addresses)


@claims("hosts/overlay-reaches-across-hosts")
def test_overlay_reaches_across_hosts(claim, hosts, overlay_pair, evidence):
    server, client = overlay_pair
    address = server.address(hosts.overlay)
    by_address = _eventually(lambda: client.fetch(f"http://{address}:{HTTPD_PORT}/", timeout=2))
    # Names on an overlay reach the other host's embedded resolver by gossip (the network DB), a moment later.
    by_name = _eventually(lambda: client.fetch(f"http://{server.name}:{HTTPD_PORT}/", timeout=2))
    lookup = client.exec("nslookup", server.name)
    evidence.json("overlay-reach", {"network": hosts.overlay, "server": {"host": "b", "address": address},
                                    "by_address": vars(by_address), "by_name": vars(by_name),
                                    "nslookup": lookup.output, "swarm": hosts.swarm_info()})
    assert by_address.exit_code == 0, (
        f"a container on host A could not reach {address}:{HTTPD_PORT} on host B over {hosts.overlay} within "
        f"{CONVERGE_S} s: {by_address.output.strip() or f'exit {by_address.exit_code}'}"
    )
    assert by_name.exit_code == 0, (
        f"a container on host A could not reach {server.name} by name on host B within {CONVERGE_S} s: "
        f"{by_name.output.strip()} "
        f"(nslookup: {lookup.output.strip()})"
    )


@claims("hosts/overlay-encapsulated")
def test_overlay_encapsulated(claim, hosts, overlay_pair, evidence):
    server, client = overlay_pair
    client_ip, server_ip = client.address(hosts.overlay), server.address(hosts.overlay)
    inner = {client_ip, server_ip}
    converged = _eventually(lambda: client.ping(server_ip))  # then the capture sees a settled exchange
    with hosts.segment.capture(hosts.a.port) as capture:
        answered = client.ping(server_ip)
    evidence.pcap("segment", capture)
    frames = capture.packets()
    vxlan = [p for p in frames if VXLAN in p and IP in p[VXLAN]]
    carried = {(p[IP].src, p[IP].dst, p[UDP].dport, p[VXLAN][IP].src, p[VXLAN][IP].dst) for p in vxlan}
    evidence.json("vxlan", {"inner_addresses": sorted(inner), "converged": vars(converged), "ping": vars(answered),
                            "outer_udp_ports": sorted({p[UDP].dport for p in frames if UDP in p}),
                            "encapsulated": sorted(carried)})
    bare = [p.summary() for p in frames if _bare(p, inner)]
    assert not bare, f"the containers' overlay addresses appear bare on the segment: {bare[:5]}"
    wanted = {(hosts.a.address, hosts.b.address, VXLAN_PORT, client_ip, server_ip),
              (hosts.b.address, hosts.a.address, VXLAN_PORT, server_ip, client_ip)}
    missing = wanted - carried
    assert not missing, (
        f"no VXLAN on UDP {VXLAN_PORT} between the hosts carrying {sorted(missing)} (outer src, dst, port, "
        f"inner src, dst); UDP ports seen on the segment: {sorted({p[UDP].dport for p in frames if UDP in p})}"
    )


def _macvlan_network(scope, block, index: int):
    """A macvlan network over a host's segment interface, of the run's macvlan subnet; each host's engine
    hands out its own part of it, as two engines' IPAMs that share a LAN must be told."""
    pool = docker.types.IPAMPool(subnet=str(block.macvlan), iprange=str(block.macvlan_range(index)))
    return scope.network("mv", driver="macvlan", options={"parent": SEGMENT_IF},
                         ipam=docker.types.IPAMConfig(pool_configs=[pool]))


@claims("hosts/macvlan-across-hosts")
def test_macvlan_across_hosts(claim, hosts, on, evidence):
    a, b = on
    nets = [_macvlan_network(a, hosts.block, 0), _macvlan_network(b, hosts.block, 1)]
    boxes = _at_once(*(lambda scope=scope, net=net: scope.container("mv", network=net.name)
                       for scope, net in zip(on, nets, strict=True)))
    (ip_a, ip_b) = (box.address(net.name) for box, net in zip(boxes, nets, strict=True))
    (mac_a, mac_b) = (box.mac(net.name) for box, net in zip(boxes, nets, strict=True))
    devices = {}
    for host, box in ((hosts.a, boxes[0]), (hosts.b, boxes[1])):
        link = box.netns.links()["eth0"]
        devices[host.name] = {"kind": link["kind"], "link": link["link"],
                              "parent": host.netns.links()[SEGMENT_IF]["index"]}
    with hosts.segment.capture(hosts.a.port) as capture:
        answered = boxes[0].ping(ip_b, count=2, adaptive=True)
    evidence.pcap("segment", capture)
    frames = [p for p in capture.packets() if IP in p and {p[IP].src, p[IP].dst} == {ip_a, ip_b}]
    seen = sorted({(p[Ether].src, p[IP].src, p[IP].ttl) for p in frames})
    evidence.json("macvlan", {"a": {"ip": ip_a, "mac": mac_a}, "b": {"ip": ip_b, "mac": mac_b},
                              "devices": devices, "ping": vars(answered), "on_segment": seen})
    for name, device in devices.items():
        assert device["kind"] == "macvlan" and device["link"] == device["parent"], (
            f"host {name.upper()}'s container has a {device['kind']} eth0 on link {device['link']}, not a macvlan "
            f"of the host's {SEGMENT_IF} (index {device['parent']})"
        )
    assert answered.exit_code == 0, f"{ip_a} on host A got no answer from {ip_b} on host B: {answered.output.strip()}"
    for box, mac, ip in ((boxes[0], mac_a, ip_a), (boxes[1], mac_b, ip_b)):
        ttl = int(box.netns.sysctl("net/ipv4/ip_default_ttl"))  # what the container's ping sends with
        assert (mac, ip, ttl) in seen, (
            f"no packet on the segment from {ip} with its own MAC {mac} and TTL {ttl}; seen (MAC, IP, TTL): {seen}"
        )


@claims("hosts/container-ip-not-reachable")
def test_container_ip_not_reachable(claim, hosts, web, evidence):
    container_ip = web[0].address()
    route = f"{container_ip}/32"
    with hosts.b.netns.iproute() as ipr:  # host B routes the container IP to host A: the strongest case
        ipr.route("add", dst=route, gateway=hosts.a.address)
    try:
        direct = hosts.b.netns.reachable(container_ip, UNPUBLISHED_PORT, timeout=SILENCE_S)
        published = hosts.b.netns.reachable(hosts.a.address, PUBLISHED_PORT)
    finally:
        with hosts.b.netns.iproute() as ipr:
            ipr.route("del", dst=route, gateway=hosts.a.address)
    evidence.json("from-host-b", {"container_ip": container_ip, "route_on_b": f"{route} via {hosts.a.address}",
                                  f"{container_ip}:{UNPUBLISHED_PORT} (not published)": direct,
                                  f"{hosts.a.address}:{PUBLISHED_PORT} (published)": published})
    assert published, f"host B cannot reach the published port at {hosts.a.address}:{PUBLISHED_PORT}"
    assert not direct, (
        f"host B reached the container's unpublished port at its container IP {container_ip}:{UNPUBLISHED_PORT} "
        f"through host A"
    )


def _across(hosts, web, container_port: int, evidence, name: str):
    """Fetch the web server on host A from the client on host B at host A's address and the host port
    *container_port* is published on: the host port, the fetch's exit code and the peer the server saw."""
    server, client = web
    server.reload()
    host_port = int(server.attrs["NetworkSettings"]["Ports"][f"{container_port}/tcp"][0]["HostPort"])
    code, peer = _peer(client, hosts.a.address, host_port)
    evidence.json(name, {"server": f"host A, container port {container_port}, host port {host_port}",
                         "client": f"a container on host B ({client.address()})", "url":
                         f"http://{hosts.a.address}:{host_port}/cgi-bin/peer", "exit": code, "peer_seen": peer,
                         "host_b": hosts.b.address, "host_a_bridge_gateway": hosts.a.engine.bridge.gateway})
    return host_port, code, peer


def _not_dnated(peer: str, hosts) -> str:
    proxy = " (host A's bridge gateway: docker-proxy relayed it)" if peer == hosts.a.engine.bridge.gateway else ""
    return f"the server saw {peer}, not host B's address {hosts.b.address}: the connection was not DNATed{proxy}"


@claims("hosts/published-port-across-hosts")
def test_published_port_across_hosts(claim, hosts, web, evidence):
    host_port, code, peer = _across(hosts, web, HTTPD_PORT, evidence, "published")
    assert code == 0, f"a container on host B could not reach host A's published port {host_port}: {peer}"
    assert peer == hosts.b.address, _not_dnated(peer, hosts)


@claims("hosts/exposed-port-across-hosts")
def test_exposed_port_across_hosts(claim, hosts, web, evidence):
    host_port, code, peer = _across(hosts, web, EXPOSED_PORT, evidence, "publish-all")
    assert code == 0, f"a container on host B could not reach host A's -P port {host_port}: {peer}"
    assert peer == hosts.b.address, _not_dnated(peer, hosts)


@claims("hosts/egress-seen-as-host")
def test_egress_seen_as_host(claim, hosts, web, on, evidence):
    box, own = web[0], web[0].address()
    service = on[1].container("svc", httpd(SERVICE_PORT), network="host")  # a service on host B itself
    service.wait_listening(SERVICE_PORT)
    with hosts.segment.capture(hosts.a.port) as capture:
        code, peer = _peer(box, hosts.b.address, SERVICE_PORT)
    evidence.pcap("segment", capture)
    bare = [p.summary() for p in capture.packets() if _bare(p, {own})]
    evidence.json("egress", {"container": own, "host_a": hosts.a.address, "service": f"{hosts.b.address}:"
                             f"{SERVICE_PORT} on host B", "exit": code, "peer_seen": peer, "bare_on_segment": bare})
    assert not bare, f"the container's own address {own} appears on the segment: {bare[:5]}"
    assert code == 0, f"the container on host A could not reach the service on host B: {peer}"
    assert peer == hosts.a.address, f"the service on host B saw {peer}, not host A's address {hosts.a.address}"
