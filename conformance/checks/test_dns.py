"""Names: embedded DNS, links, resolv.conf and its sources (host, --dns), /etc/hosts and hostnames.

The daemon's own dns setting and --link under --icc=false: test_configured.py.
"""

import pytest

from conformance.lab.host import is_loopback, resolv_conf
from conformance.lab.resolver import PROBE_NAME
from conformance.plugin import claims

from .helpers import HTTPD_PORT, PROBE_PAGE, resolv, server_and_client, wget


@pytest.fixture(scope="module")
def bridged(shared):
    """(server, client) on the default bridge, shared by the checks that only use them: a web server, and a
    plain container (whose resolver, as every probe's, is the suite's)."""
    return server_and_client(shared)


@claims("dns/default-bridge-no-names")
def test_default_bridge_no_names(claim, bridged, scope, lab, evidence):
    server, client = bridged
    by_name = wget(scope, client, f"http://{server.name}:{HTTPD_PORT}/")
    by_ip = wget(scope, client, f"http://{scope.address(server)}:{HTTPD_PORT}/")
    evidence.text("wget", f"# by name {server.name}: exit {by_name.exit_code}\n{by_name.output}\n"
                          f"# by address: exit {by_ip.exit_code}\n{by_ip.output}")
    evidence.json("resolver-queries", lab.resolver.queries)
    assert by_ip.exit_code == 0 and PROBE_PAGE in by_ip.output, "control: the server is not reachable by address"
    assert by_name.exit_code != 0, f"{server.name} resolved and answered on the default bridge"


@claims("dns/user-defined-resolves-names")
def test_user_defined_resolves_names(claim, scope, evidence):
    network = scope.network("net", driver="bridge")
    server, client = server_and_client(scope, network.name)
    address = scope.address(server, network.name)
    lookup = scope.exec(client, "nslookup", server.name)
    fetched = wget(scope, client, f"http://{server.name}:{HTTPD_PORT}/")
    resolv = scope.exec(client, "cat", "/etc/resolv.conf").output
    evidence.text("nslookup", f"{lookup.output}\n# /etc/resolv.conf\n{resolv}")
    assert "127.0.0.11" in resolv, f"the container does not use the embedded DNS server: {resolv}"
    assert lookup.exit_code == 0 and address in lookup.output, f"{server.name} did not resolve to {address}"
    assert fetched.exit_code == 0 and PROBE_PAGE in fetched.output, f"wget by name failed: {fetched.output}"


@claims("dns/link-alias")
def test_link_alias(claim, bridged, scope, evidence):
    target, _ = bridged
    client = scope.container("cli", links={target.name: "alias"})
    hosts = scope.exec(client, "cat", "/etc/hosts").output
    fetched = wget(scope, client, f"http://alias:{HTTPD_PORT}/")
    evidence.text("link", f"# /etc/hosts\n{hosts}\n# wget http://alias:{HTTPD_PORT}/: exit {fetched.exit_code}")
    assert any(line.split()[:1] == [scope.address(target)] and "alias" in line.split() for line in hosts.splitlines()), (
        f"/etc/hosts does not map alias to {scope.address(target)}"
    )
    assert fetched.exit_code == 0 and PROBE_PAGE in fetched.output, f"wget by alias failed: {fetched.output}"


@claims("dns/resolv-conf-from-host")
def test_resolv_conf_from_host(claim, scope, evidence):
    box = scope.container("box", dns=[])  # no --dns: the engine's default; this container resolves nothing
    box.reload()
    ipv6 = scope.endpoint(box).get("GlobalIPv6Address")
    host = resolv_conf()
    expected = [n for n in host["nameserver"] if not is_loopback(n) and (ipv6 or ":" not in n)]
    seen = resolv(scope, box)
    evidence.json("resolv-conf", {"host": host, "container": seen})
    assert seen["nameserver"] == expected, f"the container's nameservers {seen['nameserver']}, the host's {expected}"
    assert seen["search"] == host["search"], f"the container's search {seen['search']}, the host's {host['search']}"


@claims("dns/dns-option")
def test_dns_option(claim, bridged, scope, lab, evidence):
    server = lab.resolver.address
    _, box = bridged  # run with --dns pointing at the suite's resolver, as every probe is
    seen = resolv(scope, box)
    asked = len(lab.resolver.queries)
    lookup = scope.exec(box, "nslookup", PROBE_NAME)
    queries = lab.resolver.queries[asked:]
    evidence.json("dns-option", {"resolv_conf": seen, "nslookup": lookup.output, "queries": queries})
    assert seen["nameserver"] == [server], f"nameservers {seen['nameserver']}, expected only {server}"
    assert any(name == PROBE_NAME for _, name, _ in queries), f"{server} received no query for {PROBE_NAME}"
    assert lookup.exit_code == 0 and lab.upstream.remote in lookup.output, f"nslookup: {lookup.output}"


@claims("dns/add-host")
def test_add_host(claim, bridged, scope, evidence):
    server, _ = bridged
    address = scope.address(server)
    client = scope.container("cli", extra_hosts={"www.a.com": address})
    hosts = scope.exec(client, "cat", "/etc/hosts").output
    fetched = wget(scope, client, f"http://www.a.com:{HTTPD_PORT}/")
    evidence.text("add-host", f"# /etc/hosts\n{hosts}\n# wget http://www.a.com:{HTTPD_PORT}/: exit {fetched.exit_code}")
    assert [address, "www.a.com"] in [line.split() for line in hosts.splitlines()], f"no `{address} www.a.com` line"
    assert fetched.exit_code == 0 and PROBE_PAGE in fetched.output, f"www.a.com did not lead to {address}"


@claims("dns/hostname-option")
def test_hostname_option(claim, scope, evidence):
    box = scope.container("box", hostname="daxinyu")
    name = scope.exec(box, "hostname").output.strip()
    hosts = scope.exec(box, "cat", "/etc/hosts").output
    evidence.text("hostname", f"hostname: {name}\n# /etc/hosts\n{hosts}")
    assert name == "daxinyu", f"hostname is {name!r}"
    assert [scope.address(box), "daxinyu"] in [line.split() for line in hosts.splitlines()], (
        f"/etc/hosts does not map daxinyu to {scope.address(box)}"
    )


@claims("dns/default-hostname")
def test_default_hostname(claim, bridged, scope, evidence):
    _, box = bridged
    name = scope.exec(box, "hostname").output.strip()
    evidence.text("hostname", f"hostname: {name}\ncontainer id: {box.id}")
    assert name == box.id[:12], f"hostname {name!r}, the id starts {box.id[:12]}"
