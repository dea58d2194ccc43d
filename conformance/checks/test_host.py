"""--network host: the engine's own stack, its ports, no NAT."""

import socket

from conformance.lab import firewall
from conformance.plugin import claims

from .helpers import httpd, plain_address


@claims("host/shares-engine-namespace")
def test_shares_engine_namespace(claim, scope, lab, evidence):
    box = scope.container("host", network="host")
    engine_links = sorted(lab.engine.netns.links())
    own_view = sorted(scope.exec(box, "ls", "/sys/class/net").output.split())
    evidence.json("namespaces", {"container": scope.netns(box).inode, "engine": lab.engine.netns.inode,
                                 "engine_links": engine_links, "container_view": own_view})
    assert scope.netns(box).inode == lab.engine.netns.inode, "the container has a network namespace of its own"
    assert own_view == engine_links, f"the container sees {own_view}, the engine has {engine_links}"


@claims("host/port-conflict")
def test_port_conflict(claim, scope, lab, evidence):
    port = lab.free_port()
    with lab.engine.netns.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("0.0.0.0", port))
        holder.listen()
        box = scope.container("host", httpd(port), network="host")
        try:
            status = box.wait(timeout=15)["StatusCode"]
        except Exception:  # still running after 15 s: it bound the port
            status = None
        logs = box.logs().decode(errors="replace")
    evidence.text("httpd-log", f"host port {port} held by the suite; httpd exit status {status}\n{logs}")
    assert status not in (None, 0), f"httpd in a host-mode container kept running on held port {port}"
    assert "in use" in logs, f"httpd failed for another reason: {logs.strip()}"


@claims("host/reachable-without-nat")
def test_reachable_without_nat(claim, scope, lab, evidence):
    port = lab.free_port()
    box = scope.container("srv", httpd(port), network="host")
    scope.wait_listening(box, port)
    peer = plain_address(lab.http_get(port, "/cgi-bin/peer"))
    nat = lab.engine.nat_dump()
    dnat = firewall.dnat_rules(nat, port)
    evidence.text("nat-table", nat)
    evidence.text("peer-seen-by-container", peer)
    assert peer == lab.upstream.upstream_addr, f"the server saw {peer}, the client was {lab.upstream.upstream_addr}"
    assert not dnat, f"DNAT rules for port {port}: {dnat}"
