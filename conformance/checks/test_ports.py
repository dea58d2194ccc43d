"""Publishing with -p: the DNAT rule, reachability from upstream, and the docker-proxy processes."""

import pytest

from conformance.lab import firewall
from conformance.plugin import claims

from .helpers import HTTPD_PORT, httpd, plain_address


@pytest.fixture
def published(scope, lab):
    """A web server published as -p HOSTPORT:8080 on the default bridge."""
    host_port = lab.free_port()
    box = scope.container("web", httpd(), ports={f"{HTTPD_PORT}/tcp": host_port})
    scope.wait_listening(box, HTTPD_PORT)
    return box, host_port


@claims("ports/dnat-rule")
def test_dnat_rule(claim, published, scope, lab, evidence):
    box, host_port = published
    target = f"{scope.address(box)}:{HTTPD_PORT}"
    nat = lab.engine.nat_dump()
    dnat = firewall.dnat_rules(nat, host_port)
    evidence.text("nat-table", nat)
    assert [firewall.value(r, "--to-destination") for r in dnat] == [target], (
        f"DNAT rules for host port {host_port}: {dnat}; expected one to {target}"
    )


@claims("ports/published-reachable")
def test_published_reachable(claim, published, lab, evidence):
    _, host_port = published
    peer = plain_address(lab.http_get(host_port, "/cgi-bin/peer"))
    evidence.text("peer-seen-by-container",
                  f"GET {lab.upstream.engine_addr}:{host_port} from {lab.upstream.upstream_addr}: peer {peer}")
    assert peer == lab.upstream.upstream_addr, f"the container saw {peer}, the client was {lab.upstream.upstream_addr}"


@claims("ports/docker-proxy-per-binding")
def test_docker_proxy_per_binding(claim, published, scope, lab, evidence):
    box, host_port = published
    box.reload()
    bindings = sorted((b["HostIp"], int(b["HostPort"])) for b in box.attrs["NetworkSettings"]["Ports"][f"{HTTPD_PORT}/tcp"])
    proxies = [p for p in lab.engine.proxies() if p.host_port == host_port]
    evidence.json("bindings-and-proxies", {"bindings": bindings, "proxies": [vars(p) for p in proxies]})
    assert sorted((p.host_ip, p.host_port) for p in proxies) == bindings, (
        f"docker-proxy processes {[(p.host_ip, p.host_port) for p in proxies]} for bindings {bindings}"
    )
    target = (scope.address(box), HTTPD_PORT)
    assert all((p.container_ip, p.container_port) == target for p in proxies), f"proxies do not forward to {target}"
