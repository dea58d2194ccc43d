"""Egress from the default bridge: the MASQUERADE rule, the source addresses on each side, none between containers."""

import pytest
from scapy.layers.inet import ICMP, IP

from conformance.lab.engines import firewall
from conformance.lab.kernel.capture import Capture
from conformance.lab.safety import redact
from conformance.plugin import claims

from .helpers import HTTPD_PORT, plain_address


@pytest.fixture(scope="module")
def pair(standing):
    """A web server (on HTTPD_PORT) and a client on the default bridge, for the checks that only send from the
    client (standing ones)."""
    return standing("server", "client")


@claims("egress/masquerade-rule", tier="audit")
def test_masquerade_rule(claim, engine, evidence):
    """The rule in the chain the article quotes: nat POSTROUTING, or on the nftables backend its equivalent, a
    chain of Docker's table reached from the postrouting hook (nat-postrouting-out__BRIDGE); the same rule in
    a chain nothing jumps to masquerades nothing."""
    bridge = engine.bridge
    expected = f"-A POSTROUTING -s {bridge.subnet} ! -o {bridge.name} -j MASQUERADE"
    evidence.text("nat-table", redact.nat_evidence(engine.nat_dump(), [bridge.subnet, bridge.name]))
    found = firewall.masquerades(engine.nat_rules(), bridge.subnet, bridge.name)
    nftables = engine.firewall_backend == "nftables"
    in_chain = [r for r in found if (r.chain.startswith("nat-postrouting") if nftables else r.chain == "POSTROUTING")]
    assert in_chain, (
        f"no `{expected}` (or its {engine.firewall_backend} equivalent) in the nat table" + (
            f"; the rule is there in chain(s) {sorted({r.chain for r in found})}, not POSTROUTING: "
            f"{[r.text for r in found]}" if found else ""))


@claims("egress/masquerade-source")
def test_masquerade_source(claim, pair, lab, evidence):
    _, box = pair
    remote, upstream, bridge = lab.upstream.remote, lab.upstream, lab.engine.bridge.name
    with Capture(lab.engine.netns, bridge) as on_bridge, Capture(upstream.netns, upstream.upstream_if) as beyond:
        ping = box.ping(remote, wait=2)
    evidence.pcap("bridge", on_bridge)
    evidence.pcap("upstream", beyond)
    evidence.text("ping", ping.output)

    def sources(capture):
        return sorted({p[IP].src for p in capture.packets(
            lambda p: IP in p and ICMP in p and p[IP].dst == remote and p[ICMP].type == 8)})

    inside, outside = sources(on_bridge), sources(beyond)
    assert inside == [box.address()], f"on {bridge} the echo requests came from {inside}"
    assert outside, f"no echo request from the container reached {remote} upstream"
    assert outside == [upstream.engine_addr], (
        f"upstream saw sources {outside}; expected only the engine's outgoing address {upstream.engine_addr}"
    )
    assert ping.exit_code == 0, "the reply did not make it back to the container"


@claims("egress/no-nat-between-containers")
def test_no_nat_between_containers(claim, pair, evidence):
    server, client = pair
    fetched = client.fetch(f"http://{server.address()}:{HTTPD_PORT}/cgi-bin/peer")
    peer = plain_address(fetched.output)
    evidence.text("peer-seen-by-server", f"client {client.address()}; the server saw {peer!r}")
    assert fetched.exit_code == 0, f"the client did not reach the server: {fetched.output}"
    assert peer == client.address(), f"the server saw {peer}, the client is {client.address()}"
