"""The nftables reader on rule sets laid out as Docker 29's --firewall-backend=nftables writes them.

Docker 29 is not packaged where this project's machines fetch packages, so the
layout comes from moby's own golden files (fixtures/nftables/, copied verbatim
from daemon/libnetwork/drivers/bridge/internal/nftabler/testdata): each is
loaded with ``nft -f`` into a throwaway namespace and read back through ``nft
-j``, the path an engine reporting FirewallBackend "nftables" takes.  One word
changes on loading: bookworm's nft 1.0.6 accepts the named priority ``dstnat``
only on the prerouting hook, so the output hook's is written as its value, -100.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from conformance.lab.engines import firewall, nftables
from conformance.lab.engines.engine import Engine
from conformance.lab.kernel.netns import NamedNetns
from conformance.lab.safety.identity import Run

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "nftables"

pytestmark = pytest.mark.skipif(shutil.which("nft") is None, reason="no nft (apt-get install nftables)")


@pytest.fixture
def loaded():
    """``loaded("docker-bridges-masq-true.nft")``: a namespace holding that rule set."""
    with NamedNetns(Run().name("nft")) as netns:
        def load(name: str) -> NamedNetns:
            text = (FIXTURES / name).read_text()
            nftables.load(netns, text.replace("hook output priority dstnat;", "hook output priority -100;"))
            return netns
        yield load


def test_dnat_and_masquerade_read_from_docker_bridges(loaded):
    netns = loaded("docker-bridges-masq-true.nft")
    rules = nftables.nat_rules(netns)
    dnat = firewall.dnat_for(rules, 8080)
    assert [(r.to, r.chain, r.not_in) for r in dnat] == [("192.168.0.2:80", "nat-prerouting-and-output", "br-dummy")]
    assert dnat[0].text == 'iifname != br-dummy tcp dport 8080 dnat to 192.168.0.2:80 comment "DNAT"'
    masq = firewall.masquerades(rules, "192.168.0.0/24", "br-dummy")
    assert [r.chain for r in masq] == ["nat-postrouting-out__br-dummy"]
    assert not firewall.dnat_for(rules, 8081)
    assert not firewall.masquerades(rules, "192.168.1.0/24", "br-dummy")


def test_no_masquerade_when_the_engine_writes_none(loaded):
    """masq=false (--ip-masq=false): the DNAT rule is there, no masquerade — the fault ip-masq-off's layout."""
    rules = nftables.nat_rules(loaded("docker-bridges-masq-false.nft"))
    assert firewall.dnat_for(rules, 8080)
    assert not [r for r in rules if r.action == "MASQUERADE"]


def test_engine_reads_the_backend_it_reports(loaded):
    """An engine whose GET /info says FirewallBackend "nftables" is read through nft's JSON, not iptables."""
    netns = loaded("docker-bridges-masq-true.nft")
    engine = SimpleNamespace(firewall_backend="nftables", netns=netns, iptables_variant="nf_tables")
    assert Engine.nat_rules(engine) == nftables.nat_rules(netns)
    assert '"table": "docker-bridges"' in Engine.nat_dump(engine)


def test_an_absent_table_is_no_rules():
    with NamedNetns(Run().name("nft")) as netns:
        assert nftables.nat_rules(netns) == []


def test_iptables_lines_read_the_same_way():
    dump = ("-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\n"
            "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80\n")
    rules = firewall.nat_rules(dump)
    assert [r.to for r in firewall.dnat_for(rules, 8080)] == ["172.17.0.2:80"]
    assert firewall.masquerades(rules, "172.17.0.0/16", "docker0")
    assert not firewall.masquerades(firewall.nat_rules("-A POSTROUTING -s 172.17.0.0/16 -o docker0 -j MASQUERADE"),
                                    "172.17.0.0/16", "docker0")
