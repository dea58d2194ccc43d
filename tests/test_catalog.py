"""The catalog is consistent with the articles and with the checks (no engine needed)."""

import importlib
import textwrap
from collections import Counter

import pytest
import yaml

from conformance.cli_commands import CHECKS_DIR
from conformance.catalog import ARTICLES_DIR, CatalogError, catalog, load_catalog, missing_quotes, unmet_conditions
from conformance.lab.variants import FAULTS


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


def test_quote_check_catches_a_paraphrase(tmp_path):
    (tmp_path / "a.txt").write_text("The bridge is called docker0.", encoding="utf-8")
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
    assert len(missing_quotes(load_catalog(tmp_path), tmp_path)) == 1


def test_a_quote_may_span_the_articles_line_breaks(tmp_path):
    (tmp_path / "a.txt").write_text("The bridge is\n   named docker0. Next.", encoding="utf-8")
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
    assert missing_quotes(load_catalog(tmp_path), tmp_path) == []


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
    """Every fault a claim names exists and breaks something (FAULTS in conformance/lab/variants.py);
    every fault is mapped to some claim, so the mutation run applies each one."""
    named = {fault for claim in catalog() for fault in claim.faults}
    faults = {fault.name for fault in FAULTS}
    assert named - faults == set(), "claims name faults that do not exist"
    assert faults - named == set(), "faults no claim is mapped to"
