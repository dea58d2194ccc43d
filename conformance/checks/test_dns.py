"""Names: embedded DNS, links, resolv.conf and its sources (host, --dns), /etc/hosts and hostnames.

The daemon's own dns setting and --link under --icc=false: test_configured.py.
"""

import functools
from collections.abc import Callable
from pathlib import Path

import pytest

from conformance.lab.engines.podman import PRODUCT as PODMAN
from conformance.lab.kernel.machine import (
    DOCKER_FALLBACK_IPV4,
    DOCKER_FALLBACK_IPV6,
    engine_resolv_conf,
    is_loopback,
    parse_resolv_conf,
)
from conformance.lab.safety import redact
from conformance.lab.world.resolver import PROBE_NAME
from conformance.plugin import article_claim, claims, prerequisite

from .helpers import EMBEDDED_DNS, EXPOSED_PORT, HTTPD_PORT, PROBE_PAGE, SILENCE_S, httpd


@pytest.fixture(scope="module")
def bridged(standing):
    """(server, client) on the default bridge, for the checks that only use them (standing ones): a web server
    on the port the probe image EXPOSEs (the one a --link opens even under --icc=false), and a plain container
    (whose resolver, as every probe's, is the suite's)."""
    return standing("server", "client")


@pytest.fixture(scope="module")
def named(shared, bridged, lab):
    """One container for the claims about the names the engine gives a container: started with --hostname
    daxinyu, --add-host www.a.com:<the upstream's server> and, on Docker (Podman refuses links), --link
    <bridged's server>:alias; its resolver, as every probe's, the suite's.  The checks only read it."""
    target, _ = bridged
    links = {target.name: "alias"} if lab.engine.product != PODMAN else {}
    return shared.container("named", hostname="daxinyu", extra_hosts={"www.a.com": lab.upstream.remote},
                            links=links)


@pytest.fixture(scope="module")
def default_resolv_conf(shared) -> Callable[[], tuple[str, bool]]:
    """The resolv.conf of a container started without --dns (it resolves nothing), and whether it has IPv6; the
    container starts on the first call, so a host where neither resolv.conf claim applies gets none."""
    @functools.cache
    def read() -> tuple[str, bool]:
        box = shared.container("box", dns=[])
        ipv6 = bool(box.endpoint().get("GlobalIPv6Address"))
        return box.exec("cat", "/etc/resolv.conf").output, ipv6

    return read


@pytest.fixture
def named_egress(named, lab):
    """The prerequisite of dns/add-host: named's container reaches the upstream's server by address (egress);
    without it no name could reach it, and the check errors naming that."""
    ping = named.ping(lab.upstream.remote)
    prerequisite(ping.exit_code == 0, f"egress: {named.name} on the default bridge gets no answer from "
                                      f"{lab.upstream.remote} by address:\n{ping.output}")
    return ping


@pytest.fixture
def plain_egress(bridged, lab):
    """The prerequisite of dns/hostname-breaks-ping: a container without --hostname pings out, by address and by a
    name its resolver knows; where it cannot (egress or the resolver broken) there is nothing to compare with."""
    _, plain = bridged
    pings = {target: plain.ping(target) for target in (lab.upstream.remote, PROBE_NAME)}
    failed = {target: r.output for target, r in pings.items() if r.exit_code != 0}
    prerequisite(not failed, f"egress or the resolver: {plain.name}, without --hostname, gets no answer from "
                             f"{sorted(failed)}: {failed}")
    return pings


def _queries_for(queries, name: str) -> list:
    """The resolver's log entries for *name*, bare or with a search domain appended."""
    return [q for q in queries if q[1] == name.lower() or q[1].startswith(name.lower() + ".")]


@pytest.fixture
def client_resolves(bridged, lab):
    """The prerequisite of dns/default-bridge-no-names: bridged's client gets answers from the suite's resolver
    (which knows PROBE_NAME), asked by address whatever its resolv.conf says, so an unanswered lookup of a
    container's name is that resolver's NXDOMAIN, not a path that carries nothing."""
    _, client = bridged
    lookup = client.exec("nslookup", PROBE_NAME, lab.resolver.address)
    prerequisite(lookup.exit_code == 0, f"a resolver: {client.name} gets no answer for {PROBE_NAME} from the "
                                        f"suite's resolver {lab.resolver.address}:\n{lookup.output}")


@claims("dns/default-bridge-no-names")
def test_default_bridge_no_names(claim, bridged, client_resolves, lab, evidence):
    """What the lookup met on its way: the container's resolver, the upstream's log, the embedded address."""
    server, client = bridged
    name, address, resolver = server.name, server.address(), lab.resolver.address
    conf = client.resolv()
    hosts = client.exec("cat", "/etc/hosts").output
    asked = len(lab.resolver.queries)
    lookup = client.exec("nslookup", name)
    reached = _queries_for(lab.resolver.queries[asked:], name)
    embedded = client.exec("nslookup", name, EMBEDDED_DNS, timeout=SILENCE_S + 1)
    evidence.text("lookups", f"# /etc/resolv.conf: {conf}\n# /etc/hosts\n{hosts}\n"
                             f"# nslookup {name}: exit {lookup.exit_code}\n{lookup.output}\n"
                             f"# nslookup {name} {EMBEDDED_DNS}: exit {embedded.exit_code}\n{embedded.output}")
    evidence.json("resolver-queries", {"resolver": resolver, "for_the_name": reached})
    assert EMBEDDED_DNS not in conf["nameserver"], f"the container's resolv.conf names the embedded resolver: {conf}"
    assert not [line for line in hosts.splitlines() if name in line.split()], f"/etc/hosts maps {name}:\n{hosts}"
    why = ("something on the way answered it" if lookup.exit_code == 0 or address in lookup.output
           else "control: nor did anything answer, the path to it is broken")
    assert reached, (f"the query for {name} never reached the container's resolver {resolver} (its log has no such "
                     f"name): {why}; nslookup said:\n{lookup.output}")
    assert all(answer == "NXDOMAIN" for *_, answer in reached), f"the suite's resolver answered {reached}"
    assert lookup.exit_code != 0 and address not in lookup.output, (
        f"{name} resolved on the default bridge:\n{lookup.output}")
    assert address not in embedded.output and embedded.exit_code != 0, (
        f"a resolver at {EMBEDDED_DNS} answers on the default bridge:\n{embedded.output}")


@claims("dns/user-defined-resolves-names")
def test_user_defined_resolves_names(claim, scope, lab, evidence):
    network = scope.network("net", driver="bridge")
    embedded, client_dns = EMBEDDED_DNS, {}
    if lab.engine.product == PODMAN:
        # Podman's embedded DNS is aardvark-dns on the network's gateway, and a --dns (every probe's is the
        # suite's resolver) replaces it in resolv.conf: name it, as Podman does without --dns, search nothing.
        embedded = network.attrs["IPAM"]["Config"][0]["Gateway"]
        client_dns = {"dns": [embedded], "dns_search": ["."]}
    server, client = scope.containers(srv={"command": httpd(), "network": network.name},
                                      cli={"network": network.name, **client_dns})
    server.wait_listening(HTTPD_PORT)
    address = server.address(network.name)
    # the name as a fully qualified one: busybox nslookup asks only NAME.DOMAIN when resolv.conf has a search line
    # (the host's, copied: "search localdomain" in the article), and that the embedded server rightly denies
    lookup = client.exec("nslookup", f"{server.name}.")
    fetched = client.fetch(f"http://{server.name}:{HTTPD_PORT}/")
    resolv = client.exec("cat", "/etc/resolv.conf").output
    nameservers = client.resolv().get("nameserver", [])
    evidence.text("nslookup", f"{lookup.output}\n# /etc/resolv.conf\n{resolv}")
    assert embedded in nameservers, (
        f"no nameserver line of the container's /etc/resolv.conf names the embedded DNS server {embedded}: "
        f"{nameservers} of its /etc/resolv.conf:\n{resolv}")
    refused = "nothing listens there: it refused the query; " if "Connection refused" in lookup.output else ""
    assert lookup.exit_code == 0 and address in lookup.output, (
        f"{server.name} did not resolve to {address} at the embedded DNS server {embedded} ({refused}"
        f"nslookup said: {lookup.output.strip()})")
    assert fetched.exit_code == 0 and PROBE_PAGE in fetched.output, f"wget by name failed: {fetched.output}"


@claims("dns/link-alias")
def test_link_alias(claim, bridged, named, evidence):
    target, _ = bridged
    address, client = target.address(), named
    hosts = client.exec("cat", "/etc/hosts").output
    fetched = client.fetch(f"http://alias:{EXPOSED_PORT}/")
    by_address = client.fetch(f"http://{address}:{EXPOSED_PORT}/") if fetched.exit_code else fetched
    evidence.text("link", f"# /etc/hosts\n{hosts}\n# wget http://alias:{EXPOSED_PORT}/: exit {fetched.exit_code}\n"
                          f"# wget http://{address}:{EXPOSED_PORT}/: exit {by_address.exit_code}")
    assert any(line.split()[:1] == [address] and "alias" in line.split() for line in hosts.splitlines()), (
        f"/etc/hosts does not map alias to {address}:\n{hosts}"
    )
    by_address_said = ("also failed: the link did not open the exposed port" if by_address.exit_code
                       else "worked: the name was not used")
    assert fetched.exit_code == 0 and PROBE_PAGE in fetched.output, (
        f"alias maps to {address} in /etc/hosts, but wget http://alias:{EXPOSED_PORT}/ failed (exit "
        f"{fetched.exit_code}); by address it {by_address_said}")


def _left_out(nameserver: str, ipv6: bool) -> bool:
    """A host nameserver the engine leaves out of a container's resolv.conf: loopback, or IPv6 without IPv6."""
    return is_loopback(nameserver) or (":" in nameserver and not ipv6)


def _search_domains(text: str) -> list[str]:
    """The search list a resolver uses: the last `search` or `domain` line's (resolv.conf(5)); engines before 26
    copy every line, 26 and later keep only that one, as `search`."""
    lines = [line.split("#", 1)[0].split() for line in text.splitlines()]
    found = [words[1:] for words in lines if words[:1] in (["search"], ["domain"])]
    return found[-1] if found else []


def _host_resolv_conf(lab, ipv6: bool, seen: dict) -> tuple[Path, str]:
    """The host resolv.conf the engine copies (machine.engine_resolv_conf: the daemon's `resolv-conf`, else
    /etc/resolv.conf or, on a systemd-resolved host, the file behind its stub), and its text.  Where no
    nameserver of it is left for the container, the claim is not applicable: the engine then gives its fallback
    (moby: 8.8.8.8 and 8.8.4.4, IPv6 ones too with IPv6), which the skip names beside what the container got."""
    root = Path(f"/proc/{lab.engine.pid}/root")  # as the daemon sees the host's files (its mount namespace)
    path = engine_resolv_conf(lab.engine.options.get("resolv-conf"), root if root.is_dir() else Path("/"))
    text = path.read_text(errors="replace")
    servers = parse_resolv_conf(text)["nameserver"]
    if not [n for n in servers if not _left_out(n, ipv6)]:
        fallback = DOCKER_FALLBACK_IPV4 + (DOCKER_FALLBACK_IPV6 if ipv6 else [])
        pytest.skip(f"not applicable: no nameserver of {path} ({servers}) is one the container can reach "
                    f"({'loopback' if all(is_loopback(n) for n in servers) else 'IPv6, and it has no IPv6'}); "
                    f"the engine's fallback is {fallback}, the container got {seen['nameserver']}")
    return path, text


@claims("dns/resolv-conf-from-host")
def test_resolv_conf_from_host(claim, default_resolv_conf, lab, evidence):
    text, ipv6 = default_resolv_conf()
    seen = parse_resolv_conf(text)
    path, host_text = _host_resolv_conf(lab, ipv6, seen)
    host = parse_resolv_conf(host_text)
    expected = [n for n in host["nameserver"] if not _left_out(n, ipv6)]
    search = {"host": _search_domains(host_text), "container": _search_domains(text)}
    evidence.json("resolv-conf", {"host_file": str(path), "host": host, "container": seen, "search": search,
                                  "container_ipv6": ipv6})
    assert seen["nameserver"] == expected, f"the container's nameservers {seen['nameserver']}, the host's {expected}"
    assert search["container"] == search["host"], (
        f"the container searches {search['container']}, the host {search['host']}")


@claims("dns/dns-option")
def test_dns_option(claim, bridged, lab, evidence):
    server = lab.resolver.address
    _, box = bridged  # run with --dns pointing at the suite's resolver, as every probe is
    seen = box.resolv()
    asked = len(lab.resolver.queries)
    lookup = box.exec("nslookup", PROBE_NAME)
    queries = lab.resolver.queries[asked:]
    evidence.json("dns-option", {"resolv_conf": seen, "nslookup": lookup.output, "queries": queries})
    assert seen["nameserver"] == [server], f"nameservers {seen['nameserver']}, expected only {server}"
    assert any(name == PROBE_NAME for _, name, _ in queries), f"{server} received no query for {PROBE_NAME}"
    clients = sorted({client for client, name, _ in queries if name == PROBE_NAME})
    assert lookup.exit_code == 0 and lab.upstream.remote in lookup.output, (
        f"{server} got the query from {clients} (the host's address is {lab.upstream.engine_addr}) and answered, "
        f"but the answer did not come back to the container: {lookup.output}")


@claims("dns/add-host")
def test_add_host(claim, named, named_egress, lab, evidence):
    """NAME points at the suite's stand-in for a server on the internet, which no container-to-container
    rule (icc) stands between, and which the container reaches by address (named_egress, its prerequisite);
    the resolver's log shows that /etc/hosts, not DNS, answered for NAME."""
    address, client = lab.upstream.remote, named
    hosts = client.exec("cat", "/etc/hosts").output
    asked = len(lab.resolver.queries)
    by_name = client.ping("www.a.com")
    asked_dns = _queries_for(lab.resolver.queries[asked:], "www.a.com")
    by_address = client.ping(address) if by_name.exit_code else by_name
    evidence.text("add-host", f"# /etc/hosts\n{hosts}\n# ping {address} first: exit {named_egress.exit_code}\n"
                              f"# ping www.a.com: exit {by_name.exit_code}\n{by_name.output}\n"
                              f"# DNS queries for www.a.com: {asked_dns}")
    assert [address, "www.a.com"] in [line.split() for line in hosts.splitlines()], f"no `{address} www.a.com` line"
    assert f"({address})" in by_name.output and not asked_dns, (
        f"www.a.com did not resolve to {address} from /etc/hosts (DNS asked: {asked_dns}):\n{by_name.output}")
    by_address_said = "did not answer either: the path to it is broken" if by_address.exit_code else "answered"
    assert by_name.exit_code == 0, (
        f"www.a.com resolved to {address}, which did not answer; by address it {by_address_said}:\n{by_name.output}")


@claims("dns/hostname-option")
def test_hostname_option(claim, named, evidence):
    box = named
    name = box.exec("hostname").output.strip()
    hosts = box.exec("cat", "/etc/hosts").output
    evidence.text("hostname", f"hostname: {name}\n# /etc/hosts\n{hosts}")
    assert name == "daxinyu", f"hostname is {name!r}, not daxinyu, the --hostname it was started with"
    # Podman adds the container's name as a second alias on the same line: the mapping still holds.
    assert any(line.split()[:1] == [box.address()] and "daxinyu" in line.split()[1:]
               for line in hosts.splitlines()), f"/etc/hosts does not map daxinyu to {box.address()}:\n{hosts}"


@claims("dns/default-hostname")
def test_default_hostname(claim, bridged, evidence):
    _, box = bridged
    name = box.exec("hostname").output.strip()
    evidence.text("hostname", f"hostname: {name}\ncontainer id: {box.id}")
    assert name == box.id[:12], f"hostname {name!r}, the id starts {box.id[:12]}"


@claims("dns/resolv-conf-host-copy")
def test_resolv_conf_host_copy(claim, default_resolv_conf, lab, evidence):
    seen_text, ipv6 = default_resolv_conf()
    path, host_text = _host_resolv_conf(lab, ipv6, parse_resolv_conf(seen_text))

    def kept(line: str) -> bool:
        words = line.split()
        return bool(words) and not (words[0] == "nameserver" and len(words) > 1 and _left_out(words[1], ipv6))

    expected = [line.strip() for line in host_text.splitlines() if kept(line)]
    seen = [line.strip() for line in seen_text.splitlines() if line.strip()]
    evidence.text("resolv-conf", f"# host {path}\n{redact.resolv_conf_evidence(host_text)}\n"
                                 f"# container\n{redact.resolv_conf_evidence(seen_text)}")
    assert seen == expected, (f"the container's resolv.conf is not the host's with the unreachable nameservers "
                              f"removed: expected {expected}, got {seen}")


@claims("dns/hostname-breaks-ping")
def test_hostname_breaks_ping(claim, named, bridged, plain_egress, lab, evidence):
    """The two are named's container (--hostname daxinyu) and bridged's client (no --hostname, which pings out:
    plain_egress, the prerequisite); named's --add-host and --link touch neither its routes nor the names
    pinged here."""
    remote = lab.upstream.remote
    results = {"with --hostname": {target: named.ping(target) for target in (remote, PROBE_NAME)},
               "without": plain_egress}
    evidence.text("pings", "\n".join(f"# {who}: ping {target}: exit {r.exit_code}\n{r.output}"
                                     for who, by_target in results.items() for target, r in by_target.items()))
    outcome = {who: {t: r.exit_code == 0 for t, r in by_target.items()} for who, by_target in results.items()}
    assert outcome["without"] == {remote: True, PROBE_NAME: True}, (
        f"control: a container without --hostname cannot ping out either: {outcome['without']}")
    assert outcome["with --hostname"] == outcome["without"], f"--hostname changed what the container reaches: {outcome}"
    article_claim(not outcome["with --hostname"][remote],
                  f"a container started with --hostname pinged {remote} and {PROBE_NAME} like any other")
