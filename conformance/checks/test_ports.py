"""Publishing ports: the three -p forms, -P and EXPOSE, exclusivity, DNAT rules, docker-proxy processes."""

import contextlib
import errno
import ipaddress
import socket
from dataclasses import dataclass

import docker
import pytest
from docker.models.containers import Container

from conformance.lab.engines import firewall
from conformance.lab.kernel.netns import namespace_of
from conformance.lab.safety import redact
from conformance.lab.wait import WaitTimeout, wait_for
from conformance.plugin import article_claim, claims, prerequisite

from .helpers import (
    EXPOSED_PORT,
    HTTPD_PORT,
    PROBE_PAGE,
    SILENCE_S,
    dnat_address,
    httpd,
    peer_via,
    plain_address,
    rules_seen,
    socket_inodes,
)


def _bound_host_ports(box, container_port: int) -> list[tuple[str, int]]:
    """(host address, host port) of each binding of *container_port*, as the engine records them."""
    box.reload()
    bindings = box.attrs["NetworkSettings"]["Ports"].get(f"{container_port}/tcp") or []
    return sorted((b["HostIp"], int(b["HostPort"])) for b in bindings)


@dataclass(frozen=True)
class Published:
    """The module's web server on the default bridge, one binding per -p form the checks read:
    -p HOST_PORT:8080, -p IP:IP_PORT:8080 and -p REMAPPED:CONTAINER_PORT (a second server).  Every host
    port is one the lab reserved, below the ephemeral range the engine picks ports from for other checks."""

    box: Container
    host_port: int
    ip: str
    ip_port: int
    container_port: int
    remapped: int

    def bindings(self, container_port: int = HTTPD_PORT) -> list[tuple[str, int]]:
        return _bound_host_ports(self.box, container_port)


@pytest.fixture(scope="module")
def published(shared, lab) -> Published:
    """One container for every check that only reads its bindings: each -p form is one more binding of it."""
    host_port, ip_port, container_port, remapped = (lab.free_port() for _ in range(4))
    ip = lab.upstream.engine_addr
    box = shared.container("web", httpd(), ports={f"{HTTPD_PORT}/tcp": [host_port, (ip, ip_port)],
                                                  f"{container_port}/tcp": remapped})
    second = box.exec("httpd", "-p", str(container_port), "-h", "/www")  # forks once listening
    assert second.exit_code == 0, f"control: httpd on container port {container_port}: {second.output}"
    box.wait_listening(HTTPD_PORT)
    return Published(box, host_port, ip, ip_port, container_port, remapped)


@claims("ports/dnat-rule")
def test_dnat_rule(claim, published, lab, evidence):
    box, host_port = published.box, published.host_port
    target = f"{box.address()}:{HTTPD_PORT}"
    engine = lab.engine
    found = engine.nat_rules()
    dnat = firewall.dnat_for(found, host_port)
    evidence.text("nat-table", redact.nat_evidence(engine.nat_dump(), [host_port, box.address()]))
    assert [r.to for r in dnat] == [target], (
        f"DNAT rules for host port {host_port}: {[r.text for r in dnat]}; expected one to {target} (read from the "
        f"{engine.firewall_backend} backend, iptables variant {engine.iptables_variant}: {len(found)} NAT rules, "
        f"DNAT ones {[r.text for r in found if r.action == 'DNAT'] or 'none'})"
    )


@claims("ports/published-reachable")
def test_published_reachable(claim, published, lab, evidence):
    host_port = published.host_port
    peer = peer_via(lab, host_port)
    evidence.text("peer-seen-by-container",
                  f"GET {lab.upstream.engine_addr}:{host_port} from {lab.upstream.upstream_addr}: peer {peer}")
    assert peer == lab.upstream.upstream_addr, f"the container saw {peer}, the client was {lab.upstream.upstream_addr}"


def _container_addresses(box) -> dict[int, str]:
    """{IP version: address} of a container on the default bridge (NetworkSettings.Networks, which API
    1.52 keeps; the top-level copies are gone there)."""
    box.reload()
    network = box.attrs["NetworkSettings"]["Networks"]["bridge"]
    found = (network.get("IPAddress"), network.get("GlobalIPv6Address"))
    return {ipaddress.ip_address(a).version: a for a in found if a}


def _carried_by(proxy, container: tuple[str, int]) -> list[dict]:
    """The established connections *proxy*'s own sockets hold to *container* (address, port)."""
    mine = socket_inodes(proxy.pid)
    return [c for c in namespace_of(proxy.pid).tcp_sockets() if c["inode"] in mine and c["remote"] == container]


def _server_side(box, port: int) -> list[dict]:
    return [c for c in box.netns.tcp_sockets() if c["local"][1] == port]


IFA_F_TENTATIVE = 0x40


def _settled(netns, bridge: str, timeout: float = 5) -> None:
    """Wait (a few seconds at most) until the bridge's IPv6 addresses have passed duplicate address detection,
    which starts when the first container gives it carrier: until then the host cannot use them as sources."""
    def tentative() -> bool:
        with netns.iproute() as ipr:
            index = ipr.link_lookup(ifname=bridge)
            return any(a["flags"] & IFA_F_TENTATIVE or (a.get("IFA_FLAGS") or 0) & IFA_F_TENTATIVE
                       for a in (ipr.get_addr(family=socket.AF_INET6, index=index[0]) if index else []))
    with contextlib.suppress(WaitTimeout):  # then the request below shows what happens
        wait_for(lambda: not tentative(), f"{bridge}'s IPv6 addresses to pass DAD", timeout=timeout, interval=0.1)


LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # a wildcard binding's loopback address; a loopback one is its own
NO_LOOPBACK = (errno.EADDRNOTAVAIL, errno.ENETUNREACH, errno.EAFNOSUPPORT)  # no IPv6 on this host's lo


def _through(lab, box, proxy) -> dict:
    """One request to *proxy*'s binding at a loopback address, which Docker's DNAT leaves alone (nat OUTPUT
    skips 127.0.0.0/8 and ::1): what the proxy's own sockets, the container and the answer showed meanwhile."""
    address = LOOPBACK.get(proxy.host_ip, proxy.host_ip)
    ip = ipaddress.ip_address(address)
    seen: dict = {"to": f"[{address}]:{proxy.host_port}"}
    if not ip.is_loopback:
        return seen | {"skipped": "a binding to a non-loopback address is DNATed, not proxied, from the host"}
    if ip.version == 6:
        _settled(lab.engine.netns, lab.engine.bridge.name)
    try:
        sock = lab.engine.netns.connect(address, proxy.host_port)
    except OSError as exc:
        return seen | ({"skipped": f"no {address} here: {exc!r}"} if exc.errno in NO_LOOPBACK
                       else {"error": f"connect: {exc!r}"})
    with sock:
        target = (proxy.container_ip, proxy.container_port)
        try:
            seen["proxy_to_container"] = wait_for(lambda: _carried_by(proxy, target), "the proxy's connection",
                                                  timeout=3)
        except WaitTimeout:
            seen["proxy_to_container"] = []
        seen["container_sees"] = _server_side(box, HTTPD_PORT)
        try:
            sock.sendall(b"GET /cgi-bin/peer HTTP/1.0\r\n\r\n")
            response = b"".join(iter(lambda: sock.recv(65536), b"")).decode(errors="replace")
        except OSError as exc:
            return seen | {"error": f"GET: {exc!r}"}
    return seen | {"peer": plain_address(response.partition("\r\n\r\n")[2])}


@claims("ports/docker-proxy-per-binding")
def test_docker_proxy_per_binding(claim, published, lab, evidence):
    """One docker-proxy per binding, each forwarding to the container's address of its own family (IPv4 for
    an IPv6 binding when the container has no IPv6 address: the proxy bridges the families); and real
    traffic through each, at its loopback address: the proxy must hold a connection to the container while
    a client is connected, and that socket is the peer the container sees and answers for."""
    box = published.box
    # every binding of the container: the wildcard ones, -p IP:PORT and the remapped one of a second port
    bindings = sorted((ip, port, container_port) for container_port in (HTTPD_PORT, published.container_port)
                      for ip, port in published.bindings(container_port))
    addresses = _container_addresses(box)
    host_ports = {port for _, port, _ in bindings}
    proxies = [p for p in lab.engine.proxies() if p.host_port in host_ports]
    served = [p for p in proxies if (p.host_ip, p.host_port, p.container_port) in bindings]  # each a binding's
    wrong = [vars(p) for p in served if p.container_ip
             != (addresses.get(ipaddress.ip_address(p.host_ip).version) or addresses[4])]
    traffic = {p.pid: _through(lab, box, p) for p in served if p.container_port == HTTPD_PORT}
    evidence.json("bindings-proxies-traffic", {"bindings": bindings, "container": addresses,
                                               "proxies": [vars(p) for p in proxies], "traffic": traffic})
    assert {port for ip, port in published.bindings() if ip == published.ip} == {published.ip_port} and any(
        port == published.remapped for _, port, _ in bindings), (
        f"control: the container's bindings {bindings} lack -p {published.ip}:{published.ip_port}:{HTTPD_PORT} "
        f"or -p {published.remapped}:{published.container_port}")
    assert sorted((p.host_ip, p.host_port, p.container_port) for p in proxies) == bindings, (
        f"docker-proxy processes (host address, host port, container port) "
        f"{sorted((p.host_ip, p.host_port, p.container_port) for p in proxies)} for the bindings {bindings}"
    )
    assert not wrong, f"proxies that do not forward to the container's address {addresses}: {wrong}"
    sent = {pid: seen for pid, seen in traffic.items() if "skipped" not in seen}
    assert sent, f"no binding a loopback address reaches among {bindings}, so no traffic was sent: {traffic}"
    for pid, seen in sent.items():
        assert "error" not in seen, f"docker-proxy {pid} did not serve {seen['to']}: {seen['error']}"
        carried = seen["proxy_to_container"]
        assert carried, (f"while a client was connected to {seen['to']}, docker-proxy {pid} held no connection to "
                         f"the container")
        proxy_end = carried[0]["local"]
        assert any(c["remote"] == proxy_end for c in seen["container_sees"]), (
            f"the container's connections {seen['container_sees']} do not come from docker-proxy {pid}'s socket "
            f"{proxy_end}")
        assert seen["peer"] == proxy_end[0], (
            f"through {seen['to']} the container answered for {seen['peer']!r}, not docker-proxy {pid} {proxy_end}")


@claims("ports/form-ip-hostport-containerport")
def test_form_ip_hostport_containerport(claim, published, lab, evidence):
    """Another address is tried at loopback (IPv4, and IPv6 where the engine's lo has it) and at a second,
    non-loopback address of the engine (the bridge's gateway), all from the engine itself: nat OUTPUT skips
    127.0.0.0/8, so only the second address exercises a DNAT rule that leaves out `-d IP`, and only loopback a
    proxy that listens on every address (of its family)."""
    host_ip, host_port = published.ip, published.ip_port
    second = lab.engine.bridge.gateway
    at_ip = _answer(lab.upstream.netns, host_ip, host_port)
    elsewhere: dict[str, bool | str] = {}
    for address in ("127.0.0.1", "::1", second):
        try:
            elsewhere[address] = lab.engine.netns.reachable(address, host_port, timeout=SILENCE_S)
        except OSError as exc:  # no IPv6 in the engine's namespace
            elsewhere[address] = f"not tried: {exc!r}"
    evidence.json("reachability", {"bindings": published.bindings(),
                                   f"{host_ip}:{host_port} from upstream": at_ip,
                                   **{f"{a}:{host_port} on the engine": seen for a, seen in elsewhere.items()}})
    assert second and second != host_ip, f"control: no second engine address besides {host_ip} ({second})"
    assert at_ip == PROBE_PAGE, (
        f"-p {host_ip}:{host_port}:{HTTPD_PORT} does not serve at {host_ip}:{host_port}: {at_ip}")
    answered = [a for a, seen in elsewhere.items() if seen is True]
    dnat = [r.text for r in firewall.dnat_for(lab.engine.nat_rules(), host_port)]
    assert not answered, (f"-p {host_ip}:{host_port}:{HTTPD_PORT} also answers at {answered} port {host_port}; the "
                          f"DNAT rules for the port: {dnat}")


def _answer(netns, address: str, port: int) -> str:
    """The page GET / at address:port returns from *netns*, stripped; or what went wrong, for the message."""
    try:
        return netns.http_get(address, port).strip()
    except OSError as exc:  # refused, reset, timed out, not HTTP
        return f"GET http://{address}:{port}/ failed: {exc!r}"


@claims("ports/form-ip-containerport")
def test_form_ip_containerport(claim, scope, lab, evidence):
    """A container of its own: the port the engine picks is ephemeral, and a binding held for the whole module
    could take the number another check's binding on another address gets, and answer for it."""
    host_ip = lab.upstream.engine_addr
    box = scope.container("web", httpd(), ports={f"{HTTPD_PORT}/tcp": (host_ip, None)})
    box.wait_listening(HTTPD_PORT)
    bindings = _bound_host_ports(box, HTTPD_PORT)
    ephemeral = lab.engine.netns.local_port_range()
    evidence.json("binding", {"bindings": bindings, "ephemeral_range": [ephemeral.start, ephemeral.stop - 1]})
    assert len(bindings) == 1 and bindings[0][0] == host_ip, f"bindings {bindings}, expected one on {host_ip}"
    host_port = bindings[0][1]
    assert host_port in ephemeral, f"host port {host_port} is outside the ephemeral range {ephemeral}"
    assert lab.upstream.netns.reachable(host_ip, host_port), f"nothing answers at {host_ip}:{host_port}"


@claims("ports/form-hostport-containerport")
def test_form_hostport_containerport(claim, published, lab, evidence):
    """A fetch at each address, checked against the container's page: a handshake alone is what docker-proxy's
    own listening socket (or one the daemon passed it) completes, whether or not it forwards anything."""
    host_port = published.host_port
    outward = _answer(lab.upstream.netns, lab.upstream.engine_addr, host_port)
    loopback = _answer(lab.engine.netns, "127.0.0.1", host_port)
    evidence.json("fetched", {"outward address from upstream": outward, "127.0.0.1 on the engine": loopback})
    assert outward == PROBE_PAGE, (
        f"host port {host_port} does not serve the container at {lab.upstream.engine_addr}: {outward}")
    assert loopback == PROBE_PAGE, f"host port {host_port} does not serve the container at 127.0.0.1: {loopback}"


@claims("ports/publish-all-exposed")
def test_publish_all_exposed(claim, scope, lab, evidence):
    """The answer must come from this container (a page only it serves): the engine picks the port, and a
    binding of another container on another host address can hold the same number."""
    box = scope.container("web", httpd(EXPOSED_PORT), publish_all_ports=True)
    assert box.sh(f"echo {box.name} > /www/who").exit_code == 0, "control: could not write /www/who"
    box.wait_listening(EXPOSED_PORT)
    bindings = _bound_host_ports(box, EXPOSED_PORT)
    ephemeral = lab.engine.netns.local_port_range()
    evidence.json("binding", {"bindings": bindings, "ephemeral_range": [ephemeral.start, ephemeral.stop - 1]})
    assert bindings, f"-P did not publish the EXPOSEd port {EXPOSED_PORT}"
    assert all(port in ephemeral for _, port in bindings), f"host ports {bindings} are outside {ephemeral}"
    host_port = bindings[0][1]
    peer = peer_via(lab, host_port)
    who = lab.upstream.netns.http_get(lab.upstream.engine_addr, host_port, "/who").strip()
    assert who == box.name, f"{lab.upstream.engine_addr}:{host_port} is served by {who!r}, not by {box.name}"
    assert peer == lab.upstream.upstream_addr, f"the published port answered for {peer}"


@claims("ports/expose-alone-publishes-nothing")
def test_expose_alone_publishes_nothing(claim, request, scope, lab, evidence):
    """A container of its own, run with neither -p nor -P, as the claim says.  The module's published one (-p)
    is the control: its DNAT rule must be among the rules read, or no absence of rules can be shown; it is
    asked for only after this check's container has its address, so that this one is the first on an empty
    bridge (the address stale rules of a crashed daemon name)."""
    if not scope.hold_port(EXPOSED_PORT):
        pytest.skip(f"not applicable: port {EXPOSED_PORT}, which the probe image EXPOSEs, is in use on the host")
    box = scope.container("web", httpd(EXPOSED_PORT))
    box.wait_listening(EXPOSED_PORT)
    box.reload()
    address = box.address()
    ports = box.attrs["NetworkSettings"]["Ports"]
    published = request.getfixturevalue("published")
    found = rules_seen(lab.engine, published.host_port, f"{published.box.address()}:{HTTPD_PORT}")
    to_box = [r.text for r in found if r.action == "DNAT" and dnat_address(r.to) == address]
    proxies = [vars(p) for p in lab.engine.proxies() if p.container_ip == address]
    tried = {f"{lab.upstream.engine_addr}:{EXPOSED_PORT} from upstream":
             lab.upstream.netns.reachable(lab.upstream.engine_addr, EXPOSED_PORT, timeout=SILENCE_S),
             f"127.0.0.1:{EXPOSED_PORT} on the engine":
             lab.engine.netns.reachable("127.0.0.1", EXPOSED_PORT, timeout=SILENCE_S)}
    evidence.json("publication", {"ports": ports, "dnat_to_container": to_box, "proxies": proxies,
                                  "connections": tried})
    assert ports.get(f"{EXPOSED_PORT}/tcp") is None, f"the EXPOSEd port got host bindings {ports}"
    assert not to_box, f"DNAT rules lead to the container: {to_box}"
    assert not proxies, f"docker-proxy processes serve the container: {proxies}"
    assert not any(tried.values()), f"the EXPOSEd port answers on the host: {tried}"


def _bound_at(lab, bindings: list[tuple[str, int]], host_port: int) -> tuple:
    """Where a client reaches *host_port*, as bound (no -p address: the daemon's --ip, 0.0.0.0 by default): (its
    namespace, the address, who it is, the binding for a message).  Every address: from another host (the
    upstream) at the engine's address; a loopback one (--ip=127.0.0.1): from the engine's own namespace."""
    # Podman records a binding to every address with no HostIp at all, Docker with 0.0.0.0.
    bound = sorted({ip or "0.0.0.0" for ip, port in bindings if port == host_port and ":" not in ip})
    binding = (f"bound at {', '.join(bound) or 'no IPv4 address'} (the daemon's --ip: "
               f"{lab.engine.options.get('ip') or 'unset, 0.0.0.0'})")
    if bound and all(ipaddress.ip_address(ip).is_loopback for ip in bound):
        return lab.engine.netns, bound[0], "from the engine's own namespace", binding
    return lab.upstream.netns, lab.upstream.engine_addr, f"from upstream ({lab.upstream.upstream_addr})", binding


@claims("ports/host-port-exclusive")
def test_host_port_exclusive(claim, published, scope, lab, evidence):
    host_port = published.host_port
    netns, address, client, binding = _bound_at(lab, published.bindings(), host_port)
    try:
        second = scope.container("second", httpd(), ports={f"{HTTPD_PORT}/tcp": host_port})
    except docker.errors.APIError as exc:
        refused = str(exc)
    else:
        second.reload()
        raise AssertionError(f"a second container started with host port {host_port}, which {published.box.name} "
                             f"publishes: its bindings {second.attrs['NetworkSettings']['Ports']}")
    still = netns.reachable(address, host_port)
    evidence.text("second-container", f"{refused}\nfirst still serves {address}:{host_port} {client} "
                                      f"({binding}): {still}")
    assert "already allocated" in refused or "in use" in refused, (
        f"the second container failed for another reason: {refused}"
    )
    assert still, f"the first container no longer serves host port {host_port} at {address} {client} ({binding})"


@claims("ports/reached-at-container-port")
def test_reached_at_container_port(claim, published, lab, evidence):
    container_port, host_port = published.container_port, published.remapped
    netns, address, client, binding = _bound_at(lab, published.bindings(container_port), host_port)
    at_host_port = netns.reachable(address, host_port)
    at_container_port = netns.reachable(address, container_port, timeout=SILENCE_S)
    evidence.json("reachability", {"client": client, "binding": binding,
                                   f"{address}:{host_port} (host port)": at_host_port,
                                   f"{address}:{container_port} (container port)": at_container_port})
    assert at_host_port, (f"-p {host_port}:{container_port} is not reachable at {address}:{host_port}, the host port, "
                          f"{client} ({binding})")
    assert not at_container_port, f"{address}:{container_port} answers although nothing publishes it"
    article_claim(at_container_port, f"the container answers at {address}:{host_port}, the host port, "
                                     f"not at the container port {container_port}")


@pytest.fixture
def reached_from_upstream(published, lab):
    """The prerequisite of ports/docker-proxy-carries-traffic, whose claim is who carries a connection from
    another host, not whether one is made (ports/published-reachable's): the published port accepts one."""
    address, port = lab.upstream.engine_addr, published.host_port
    prerequisite(lab.upstream.netns.reachable(address, port),
                 f"a connection from upstream ({lab.upstream.upstream_addr}) to the published {address}:{port}")


@claims("ports/docker-proxy-carries-traffic")
def test_docker_proxy_carries_traffic(claim, published, reached_from_upstream, lab, evidence):
    """A connection from another host, held open while both ends are read: the container's end must face
    the client's own address and port, and no docker-proxy socket may carry it."""
    box, host_port = published.box, published.host_port
    proxies = [p for p in lab.engine.proxies() if p.host_port == host_port]
    try:
        sock = lab.upstream.netns.connect(lab.upstream.engine_addr, host_port)
    except OSError as exc:
        raise AssertionError(f"{lab.upstream.engine_addr}:{host_port} refuses a connection from upstream: "
                             f"{exc!r}") from None
    with sock:
        client = sock.getsockname()
        try:
            seen = wait_for(lambda: _server_side(box, HTTPD_PORT), "the container's end of the connection", timeout=3)
        except WaitTimeout:
            seen = []
        through = {p.pid: [c for c in namespace_of(p.pid).tcp_sockets() if c["inode"] in socket_inodes(p.pid)]
                   for p in proxies}
    evidence.json("connection-from-upstream", {"client": client, "container_sees": seen,
                                               "proxies": [vars(p) for p in proxies], "proxy_sockets": through})
    assert seen, f"no connection reached the container from {client}"
    peers = [tuple(c["remote"]) for c in seen]
    assert client in peers, (f"the container's connections come from {peers}, not the client {client}: something "
                             f"between them (docker-proxy's sockets: {through}) carried the connection")
    assert not any(through.values()), f"docker-proxy held connections meanwhile: {through}"
    article_claim(any(through.values()), f"no docker-proxy socket carried the connection from {client}: the "
                                         "kernel's DNAT delivered it to the container, which saw the client itself")
