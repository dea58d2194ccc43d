"""Container names: no resolution on the default bridge, embedded DNS on a user-defined bridge."""

from conformance.plugin import claims

from .helpers import PROBE_PAGE, httpd, wget


@claims("dns/default-bridge-no-names")
def test_default_bridge_no_names(claim, scope, lab, evidence):
    server = scope.container("srv", httpd())
    client = scope.container("cli")
    scope.wait_listening(server, 8080)
    by_name = wget(scope, client, f"http://{server.name}:8080/")
    by_ip = wget(scope, client, f"http://{scope.address(server)}:8080/")
    evidence.text("wget", f"# by name {server.name}: exit {by_name.exit_code}\n{by_name.output}\n"
                          f"# by address: exit {by_ip.exit_code}\n{by_ip.output}")
    evidence.json("resolver-queries", lab.resolver.queries)
    assert by_ip.exit_code == 0 and PROBE_PAGE in by_ip.output, "control: the server is not reachable by address"
    assert by_name.exit_code != 0, f"{server.name} resolved and answered on the default bridge"


@claims("dns/user-defined-resolves-names")
def test_user_defined_resolves_names(claim, scope, evidence):
    network = scope.network("net", driver="bridge")
    server = scope.container("srv", httpd(), network=network.name)
    client = scope.container("cli", network=network.name)
    scope.wait_listening(server, 8080)
    address = scope.address(server, network.name)
    lookup = scope.exec(client, "nslookup", server.name)
    fetched = wget(scope, client, f"http://{server.name}:8080/")
    resolv = scope.exec(client, "cat", "/etc/resolv.conf").output
    evidence.text("nslookup", f"{lookup.output}\n# /etc/resolv.conf\n{resolv}")
    assert "127.0.0.11" in resolv, f"the container does not use the embedded DNS server: {resolv}"
    assert lookup.exit_code == 0 and address in lookup.output, f"{server.name} did not resolve to {address}"
    assert fetched.exit_code == 0 and PROBE_PAGE in fetched.output, f"wget by name failed: {fetched.output}"
