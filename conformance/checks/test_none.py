"""--network none: only loopback, no route, nothing reachable."""

from conformance.plugin import claims


@claims("none/only-loopback")
def test_only_loopback(claim, scope, evidence):
    box = scope.container("none", network="none")
    links = scope.netns(box).links()
    own_view = scope.exec(box, "ls", "/sys/class/net").output.split()
    evidence.json("netlink-links", links)
    evidence.text("container-sys-class-net", "\n".join(own_view))
    assert sorted(links) == ["lo"], f"netlink in the container's namespace lists {sorted(links)}"
    assert own_view == ["lo"], f"the container lists {own_view} in /sys/class/net"


@claims("none/no-connectivity")
def test_no_connectivity(claim, scope, lab, evidence):
    box = scope.container("none", network="none")
    netns = scope.netns(box)
    routes, addresses = netns.routes(), netns.addresses()
    ping = scope.exec(box, "ping", "-c", "1", "-W", "2", lab.upstream.remote)
    evidence.json("routes-and-addresses", {"routes": routes, "addresses": addresses})
    evidence.text("ping-upstream", ping.output)
    assert routes == [], f"main routing table is not empty: {routes}"
    assert set(addresses) <= {"127.0.0.1/8", "::1/128"}, f"addresses beyond loopback: {addresses}"
    assert ping.exit_code != 0, f"ping to {lab.upstream.remote} succeeded from a none-mode container"
