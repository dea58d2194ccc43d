"""Egress from the default bridge: the MASQUERADE rule, and the source address seen upstream."""

from scapy.layers.inet import ICMP, IP

from conformance.lab import firewall
from conformance.lab.capture import Capture
from conformance.plugin import claims


@claims("egress/masquerade-rule")
def test_masquerade_rule(claim, lab, evidence):
    bridge = lab.engine.bridge
    expected = f"-A POSTROUTING -s {bridge.subnet} ! -o {bridge.name} -j MASQUERADE"
    nat = lab.engine.nat_dump()
    evidence.text("nat-table", nat)
    assert expected in firewall.rules(nat), f"no `{expected}` in the nat table"


@claims("egress/masquerade-source")
def test_masquerade_source(claim, scope, lab, evidence):
    box = scope.container("egress")
    remote, upstream = lab.upstream.remote, lab.upstream
    with Capture(upstream.netns, upstream.upstream_if) as capture:
        ping = scope.exec(box, "ping", "-c", "1", "-W", "2", remote)
    evidence.pcap("upstream", capture)
    evidence.text("ping", ping.output)
    requests = capture.packets(lambda p: IP in p and ICMP in p and p[IP].dst == remote and p[ICMP].type == 8)
    sources = sorted({p[IP].src for p in requests})
    assert requests, f"no echo request from the container reached {remote} upstream"
    assert sources == [upstream.engine_addr], (
        f"upstream saw sources {sources}; expected only the engine's {upstream.engine_addr} "
        f"(the container is {scope.address(box)})"
    )
    assert ping.exit_code == 0, "the reply did not make it back to the container"
