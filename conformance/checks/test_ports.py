"""Publishing ports: the three -p forms, -P and EXPOSE, exclusivity, DNAT rules, docker-proxy processes."""

import docker
import pytest

from conformance.lab import firewall
from conformance.plugin import article_claim, claims

from .helpers import EXPOSED_PORT, HTTPD_PORT, httpd, plain_address, reachable


@pytest.fixture(scope="module")
def published(shared, lab):
    """A web server published as -p HOSTPORT:8080 on the default bridge, shared by the checks that only use it."""
    host_port = lab.free_port()
    box = shared.container("web", httpd(), ports={f"{HTTPD_PORT}/tcp": host_port})
    shared.wait_listening(box, HTTPD_PORT)
    return box, host_port


@claims("ports/dnat-rule")
def test_dnat_rule(claim, published, scope, lab, evidence):
    box, host_port = published
    target = f"{scope.address(box)}:{HTTPD_PORT}"
    dnat = firewall.dnat_for(lab.engine.nat_rules(), host_port)
    evidence.text("nat-table", lab.engine.nat_dump())
    assert [r.to for r in dnat] == [target], (
        f"DNAT rules for host port {host_port}: {[r.text for r in dnat]}; expected one to {target}"
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


def _bound_host_ports(box, container_port: int) -> list[tuple[str, int]]:
    box.reload()
    bindings = box.attrs["NetworkSettings"]["Ports"].get(f"{container_port}/tcp") or []
    return sorted((b["HostIp"], int(b["HostPort"])) for b in bindings)


@claims("ports/form-ip-hostport-containerport")
def test_form_ip_hostport_containerport(claim, scope, lab, evidence):
    host_ip, host_port = lab.upstream.engine_addr, lab.free_port()
    box = scope.container("web", httpd(), ports={f"{HTTPD_PORT}/tcp": (host_ip, host_port)})
    scope.wait_listening(box, HTTPD_PORT)
    at_ip = reachable(lab.upstream.netns, host_ip, host_port)
    elsewhere = reachable(lab.engine.netns, "127.0.0.1", host_port)
    evidence.json("reachability", {"binding": _bound_host_ports(box, HTTPD_PORT),
                                   f"{host_ip}:{host_port} from upstream": at_ip,
                                   f"127.0.0.1:{host_port} on the engine": elsewhere})
    assert at_ip, f"-p {host_ip}:{host_port}:{HTTPD_PORT} is not reachable at {host_ip}:{host_port}"
    assert not elsewhere, f"-p {host_ip}:{host_port}:{HTTPD_PORT} also answers at 127.0.0.1:{host_port}"


@claims("ports/form-ip-containerport")
def test_form_ip_containerport(claim, scope, lab, evidence):
    host_ip = lab.upstream.engine_addr
    box = scope.container("web", httpd(), ports={f"{HTTPD_PORT}/tcp": (host_ip, None)})
    scope.wait_listening(box, HTTPD_PORT)
    bindings = _bound_host_ports(box, HTTPD_PORT)
    ephemeral = lab.engine.netns.local_port_range()
    evidence.json("binding", {"bindings": bindings, "ephemeral_range": [ephemeral.start, ephemeral.stop - 1]})
    assert len(bindings) == 1 and bindings[0][0] == host_ip, f"bindings {bindings}, expected one on {host_ip}"
    host_port = bindings[0][1]
    assert host_port in ephemeral, f"host port {host_port} is outside the ephemeral range {ephemeral}"
    assert reachable(lab.upstream.netns, host_ip, host_port), f"nothing answers at {host_ip}:{host_port}"


@claims("ports/form-hostport-containerport")
def test_form_hostport_containerport(claim, published, lab, evidence):
    _, host_port = published
    outward = reachable(lab.upstream.netns, lab.upstream.engine_addr, host_port)
    loopback = reachable(lab.engine.netns, "127.0.0.1", host_port)
    evidence.json("reachability", {"outward address from upstream": outward, "127.0.0.1 on the engine": loopback})
    assert outward, f"host port {host_port} does not answer at {lab.upstream.engine_addr}"
    assert loopback, f"host port {host_port} does not answer at 127.0.0.1"


@claims("ports/publish-all-exposed")
def test_publish_all_exposed(claim, scope, lab, evidence):
    box = scope.container("web", httpd(EXPOSED_PORT), publish_all_ports=True)
    scope.wait_listening(box, EXPOSED_PORT)
    bindings = _bound_host_ports(box, EXPOSED_PORT)
    ephemeral = lab.engine.netns.local_port_range()
    evidence.json("binding", {"bindings": bindings, "ephemeral_range": [ephemeral.start, ephemeral.stop - 1]})
    assert bindings, f"-P did not publish the EXPOSEd port {EXPOSED_PORT}"
    assert all(port in ephemeral for _, port in bindings), f"host ports {bindings} are outside {ephemeral}"
    host_port = bindings[0][1]
    peer = plain_address(lab.http_get(host_port, "/cgi-bin/peer"))
    assert peer == lab.upstream.upstream_addr, f"the published port answered for {peer}"


@claims("ports/expose-alone-publishes-nothing")
def test_expose_alone_publishes_nothing(claim, scope, lab, evidence):
    box = scope.container("web", httpd(EXPOSED_PORT))
    scope.wait_listening(box, EXPOSED_PORT)
    box.reload()
    address = scope.address(box)
    ports = box.attrs["NetworkSettings"]["Ports"]
    to_box = [r.text for r in lab.engine.nat_rules() if r.action == "DNAT" and address in (r.to or "")]
    proxies = [vars(p) for p in lab.engine.proxies() if p.container_ip == address]
    evidence.json("publication", {"ports": ports, "dnat_to_container": to_box, "proxies": proxies})
    assert ports.get(f"{EXPOSED_PORT}/tcp") is None, f"the EXPOSEd port got host bindings {ports}"
    assert not to_box, f"DNAT rules lead to the container: {to_box}"
    assert not proxies, f"docker-proxy processes serve the container: {proxies}"


@claims("ports/host-port-exclusive")
def test_host_port_exclusive(claim, published, scope, lab, evidence):
    _, host_port = published
    with pytest.raises(docker.errors.APIError) as refused:
        scope.container("second", httpd(), ports={f"{HTTPD_PORT}/tcp": host_port})
    still = reachable(lab.upstream.netns, lab.upstream.engine_addr, host_port)
    evidence.text("second-container", f"{refused.value}\nfirst still serves {host_port}: {still}")
    assert "already allocated" in str(refused.value) or "in use" in str(refused.value), (
        f"the second container failed for another reason: {refused.value}"
    )
    assert still, f"the first container no longer serves host port {host_port}"


@claims("ports/reached-at-container-port")
def test_reached_at_container_port(claim, scope, lab, evidence):
    container_port, host_port = lab.free_port(), lab.free_port()
    while host_port == container_port:
        host_port = lab.free_port()
    box = scope.container("web", httpd(container_port), ports={f"{container_port}/tcp": host_port})
    scope.wait_listening(box, container_port)
    address = lab.upstream.engine_addr
    at_host_port = reachable(lab.upstream.netns, address, host_port)
    at_container_port = reachable(lab.upstream.netns, address, container_port)
    evidence.json("reachability", {f"{address}:{host_port} (host port)": at_host_port,
                                   f"{address}:{container_port} (container port)": at_container_port})
    assert at_host_port, f"-p {host_port}:{container_port} is not reachable at the host port"
    assert not at_container_port, f"{address}:{container_port} answers although nothing publishes it"
    article_claim(at_container_port, f"the container answers at {address}:{host_port}, the host port, "
                                     f"not at the container port {container_port}")
