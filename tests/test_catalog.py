"""The catalog is consistent with the articles and with the checks (no engine needed)."""

import functools
import importlib
import textwrap
from collections import Counter

import pytest
import yaml

from conformance.catalog import (
    ARTICLES_DIR,
    CatalogError,
    catalog,
    fragment_quotes,
    load_catalog,
    missing_quotes,
    unmet_conditions,
)
from conformance.commands.run import CHECKS_DIR
from conformance.lab.faults import FAULTS


def bound_claims() -> Counter:
    """How many check functions declare each claim id with @claims."""
    counts: Counter = Counter()
    for path in sorted(CHECKS_DIR.glob("test_*.py")):
        module = importlib.import_module(f"conformance.checks.{path.stem}")
        for name in dir(module):
            for mark in getattr(getattr(module, name), "pytestmark", []):
                if name.startswith("test_") and mark.name == "claims":
                    counts.update(mark.args)
    return counts


def test_every_quote_is_verbatim_in_its_article():
    assert missing_quotes(catalog()) == []


def test_every_claim_has_exactly_one_check():
    bound = bound_claims()
    unbound = sorted(set(catalog().claims) - set(bound))
    twice = sorted(claim for claim, n in bound.items() if n > 1)
    assert not unbound, f"claims with no check: {unbound}"
    assert not twice, f"claims bound to more than one check: {twice}"


def test_every_check_names_a_catalogued_claim():
    unknown = sorted(set(bound_claims()) - set(catalog().claims))
    assert not unknown, f"checks bound to claims not in the catalog: {unknown}"


@pytest.mark.parametrize("article, missing", [
    ("The bridge is called docker0.", 1),            # a paraphrase is no quote
    ("The bridge is\n   named docker0. Next.", 0),   # a quote may span the article's line breaks
])
def test_quotes_match_their_article_with_whitespace_normalised(tmp_path, article, missing):
    (tmp_path / "a.txt").write_text(article, encoding="utf-8")
    (tmp_path / "t.yaml").write_text(textwrap.dedent("""\
        topic: t
        title: T
        claims:
          - id: t/x
            kind: behaviour
            statement: The bridge MUST be docker0.
            no_fault: an example
            sources:
              - {doc: a.txt, quote: "The bridge is named docker0."}
        """), encoding="utf-8")
    assert len(missing_quotes(load_catalog(tmp_path), tmp_path)) == missing


@pytest.mark.parametrize("entry, problem", [
    ({"id": "t/x", "kind": "behaviour", "statement": "It should work.", "no_fault": "r"}, "MUST"),
    ({"id": "Bad Id", "kind": "behaviour", "statement": "It MUST.", "no_fault": "r"}, "path-like"),
    ({"id": "t/x", "kind": "opinion", "statement": "It MUST.", "no_fault": "r"}, "kind"),
    ({"id": "t/x", "kind": "behaviour", "statement": "It MUST.", "no_fault": "r", "colour": "red"}, "unknown keys"),
    ({"id": "t/x", "kind": "behaviour", "statement": "It MUST."}, "either 'faults'"),
    ({"id": "t/x", "kind": "behaviour", "statement": "It MUST.", "faults": ["f"], "no_fault": "r"}, "not both"),
])
def test_loader_rejects_malformed_claims(tmp_path, entry, problem):
    entry = {**entry, "sources": [{"doc": "a.txt", "quote": "q"}]}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"topic": "t", "title": "T", "claims": [entry]}))
    with pytest.raises(CatalogError, match=problem):
        load_catalog(tmp_path)


def test_duplicate_ids_are_rejected(tmp_path):
    entry = {"id": "t/x", "kind": "behaviour", "statement": "It MUST.", "sources": [{"doc": "a", "quote": "q"}],
             "no_fault": "r"}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"topic": "t", "title": "T", "claims": [entry, entry]}))
    with pytest.raises(CatalogError, match="duplicate"):
        load_catalog(tmp_path)


@pytest.mark.parametrize("applies, facts, unmet", [
    ({"kernel": "<6.2"}, {"kernel": "6.18.44-fc-v595"}, {"kernel": "<6.2"}),
    ({"kernel": "<6.2"}, {"kernel": "5.10.0-23-amd64"}, {}),
    ({"engine_version": ">=20.10,<26"}, {"engine_version": "20.10.24+dfsg1"}, {}),
    ({"userland_proxy": True}, {"userland_proxy": False}, {"userland_proxy": True}),
    ({"icc": True}, {}, {"icc": True}),
])
def test_applies_conditions(applies, facts, unmet):
    assert unmet_conditions(applies, facts) == unmet


def test_out_of_scope_passages_need_a_reason(tmp_path):
    (tmp_path / "out-of-scope.yaml").write_text(yaml.safe_dump({"passages": [{"doc": "a.txt", "quote": "q"}]}))
    with pytest.raises(CatalogError, match="reason"):
        load_catalog(tmp_path)


def test_every_article_is_accounted_for():
    cat = catalog()
    quoted = {s.doc for claim in cat for s in claim.sources} | {p.doc for p in cat.out_of_scope}
    assert quoted == {p.name for p in ARTICLES_DIR.glob("*.txt")}


def test_mutation_map_names_only_faults_and_uses_every_fault():
    """Every fault a claim names exists and breaks something (FAULTS, the registry of conformance/lab/faults/);
    every fault is mapped to some claim, so the mutation run applies each one."""
    named = {fault for claim in catalog() for fault in claim.faults}
    faults = {fault.name for fault in FAULTS}
    assert named - faults == set(), "claims name faults that do not exist"
    assert faults - named == set(), "faults no claim is mapped to"


@functools.cache
def fragments() -> dict[str, list[str]]:
    return fragment_quotes(catalog())


@pytest.mark.parametrize("owner", [*sorted(catalog().claims), "out of scope"])
def test_every_quote_is_a_whole_sentence(owner):
    """Per claim, so a topic whose quotes are still fragments fails on its own claims only."""
    assert fragments().get(owner, []) == []


ARTICLE = """\
Docker网络
none网络
none 网络就是什么都没有的网络。挂在这个网络下的容器除了 lo,没有其他任何网卡。容器创建时,可以通过 --network=none
指定使用 none 网络。
- 容器对网络传输效率有较高要求
Docker 提供三种 user-defined 网络驱动:bridge
, overlay
和 macvlan
。注:只有使用 –subnet 创建的网络才能指定静态 IP。
View the host name of the container
[root@localhost ~]# docker run -it --rm busybox / # hostname a7eaa5b9faf6 # DNS is the host's
The gateway is 172.17.0.1. It answers: ping works. The host mode is used, but ports clash.
host | --network host | Container and host share Network namespace |
docker network create --driver bridge test_net
"""


@pytest.mark.parametrize("quote, problem", [
    ("挂在这个网络下的容器除了 lo,没有其他任何网卡。", None),  # between two 。
    ("容器创建时,可以通过 --network=none 指定使用 none 网络。", None),  # across a line break
    ("容器创建时,可以通过 --network=none", None),  # a line end ends it (the scrape breaks at inline code)
    ("容器对网络传输效率有较高要求", None),  # a list item
    ("Docker 提供三种 user-defined 网络驱动:bridge , overlay 和 macvlan 。", None),
    ("注:只有使用 –subnet 创建的网络才能指定静态 IP。", None),  # after a 。 with no space
    ("只有使用 –subnet 创建的网络才能指定静态 IP。", None),  # after an ASCII colon before a Chinese character
    ("[root@localhost ~]# docker run -it --rm busybox", None),  # one command of a transcript
    ("/ # hostname a7eaa5b9faf6", None),
    ("# DNS is the host's", None),  # a comment in it
    ("The gateway is 172.17.0.1.", None),  # 172.17.0.1 ends nothing, the final period does
    ("It answers: ping works.", None),
    ("ping works.", None),  # after a colon and a space
    ("Container and host share Network namespace", None),  # a table cell
    ("docker network create --driver bridge test_net", None),  # a command line, not a heading
    ("没有其他任何网卡。", "starts mid-sentence"),
    ("挂在这个网络下的容器除了 lo", "ends mid-sentence"),
    ("The gateway is 172.17.0", "ends mid-sentence"),
    ("The host mode is used", "ends mid-sentence"),
    ("but ports clash.", "starts mid-sentence"),
    ("hostname a7eaa5b9faf6", "starts mid-sentence"),
    ("View the host name of the container", "a heading"),
    ("none网络", "a heading"),
])
def test_whole_sentence_rule(tmp_path, quote, problem):
    (tmp_path / "a.txt").write_text(ARTICLE, encoding="utf-8")
    entry = {"id": "t/x", "kind": "behaviour", "statement": "It MUST.", "no_fault": "r",
             "sources": [{"doc": "a.txt", "quote": quote}]}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"topic": "t", "title": "T", "claims": [entry]}))
    cat = load_catalog(tmp_path)
    assert missing_quotes(cat, tmp_path) == []
    found = fragment_quotes(cat, tmp_path).get("t/x", [])
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1 and problem in found[0]
