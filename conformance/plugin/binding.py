"""Binding checks to catalog claims: the ``claims`` decorator, tiers, parametrization over the catalog,
applicability skips, expected failures (documented inaccuracies, known deviations) and Allure labels.

Outcomes are pytest's own: a documented inaccuracy is a strict xfail that only ArticleContradicted satisfies,
a known deviation (``--expectations``) a strict xfail that any failure satisfies; when the expected failure
does not happen, pytest fails the check as XPASS(strict), with the marker's reason (which names the file).
A flaky known deviation is a non-strict xfail, and its pass is recorded as passed.
"""

from __future__ import annotations

from typing import Any

import allure
import pytest

from ..catalog import Claim, catalog, unmet_conditions
from ..lab.kernel.machine import host_facts
from ..reports import results
from .needs import creating
from .options import TIERS
from .run_facts import run_facts
from .scheduling import engine_free_first


def claims(*ids: str, tier: str = "full") -> pytest.MarkDecorator:
    """Bind a check to the catalog claims it verifies.

    ``tier="audit"`` marks a check that only reads (the engine's API, rules, interfaces): it may take
    ``engine`` and ``evidence``, never a fixture that creates something (conformance/plugin/needs.py says which).
    """
    if tier not in TIERS:
        raise ValueError(f"tier must be one of {TIERS}")
    return pytest.mark.claims(*ids, tier=tier)


def tier_of(item: pytest.Item) -> str:
    marker = item.get_closest_marker("claims")
    return marker.kwargs.get("tier", "full") if marker else "full"


def claim_of(item: pytest.Item) -> Claim | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("claim") if callspec else None


class NotCheckable(Exception):
    """What a check needs besides its claim (egress, a resolver, a rule reader that sees the rules that must be
    there) could not be shown: raised in a fixture or in the check itself, it makes the claim an error naming
    what was missing (conformance/plugin/recording.py), never a violation, a pass or an expected failure."""


def prerequisite(met: bool, missing: str) -> None:
    """Raise NotCheckable naming *missing* unless *met*: where a check proves first what its claim needs."""
    if not met:
        raise NotCheckable(f"not checkable, a prerequisite is missing: {missing}")


class ArticleContradicted(AssertionError):
    """The host does not do what an article states: for a documented inaccuracy, the expected outcome."""


def article_claim(holds: bool, message: str) -> None:
    """Assert what a documented-inaccuracy claim's article states.

    A check of such a claim first asserts the corrected expectation with plain
    asserts (a violation there is a real failure), then calls this with the
    article's own statement.  Only ArticleContradicted counts as the expected
    failure; if the article's statement holds, strict xfail reports XPASS and
    the catalog entry needs revisiting.
    """
    if not holds:
        raise ArticleContradicted(message)


class EngineFacts:
    """The hook through which the checks' conftest gives the engine's facts: the plugin asks for them only
    when a claim's ``applies`` (or the expectations' ``when``) names one, and asks for no fixture by name."""

    @pytest.hookspec(firstresult=True)
    def pytest_conformance_engine_facts(self, request: pytest.FixtureRequest) -> dict[str, Any] | None:
        """The facts of the engine under test (``Engine.facts()``) a claim's ``applies`` is evaluated against."""


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(EngineFacts)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("claims")
    if marker is None or "claim" not in metafunc.fixturenames:
        return
    selected = [catalog()[claim_id] for claim_id in marker.args]
    metafunc.parametrize("claim", selected, ids=[c.id for c in selected])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Police the tiers, select by --claim and --tier, and order engine-free checks first."""
    wanted, audit = set(config.option.claim), config.option.tier == "audit"
    for item in items:
        made = creating(getattr(item, "fixturenames", ())) if tier_of(item) == "audit" else []
        if made:
            raise pytest.UsageError(f"{item.nodeid} is marked tier='audit' but creates things (it needs "
                                    f"{', '.join(map(repr, made))})")
    if wanted or audit:
        deselected = [item for item in items if (wanted and getattr(claim_of(item), "id", None) not in wanted)
                      or (audit and tier_of(item) != "audit")]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = [item for item in items if item not in deselected]
    engine_free_first(items)
    for item in items:
        claim = claim_of(item)
        if claim is None:
            continue
        item.user_properties += results.bound(claim.id, tier_of(item))


@pytest.fixture(autouse=True)
def _claim_context(request: pytest.FixtureRequest) -> None:
    """Label the check in Allure, skip it when the engine is outside the claim's ``applies``, and mark the
    failures it is expected to have.

    The markers are added here, at setup, because a known deviation's ``when`` may name engine facts; pytest
    evaluates xfail markers added by then when the check's call ends, the first one only, so a known deviation
    (any failure) goes before a documented inaccuracy (only ArticleContradicted).
    """
    claim = claim_of(request.node)
    if claim is None:
        return
    _label(claim)
    if claim.applies:
        facts = _facts(request, claim.applies)
        unmet = unmet_conditions(claim.applies, facts)
        if unmet:
            details = ", ".join(f"{k}={facts.get(k)!r} (claim needs {v!r})" for k, v in unmet.items())
            pytest.skip(f"not applicable: {details}")
    if claim.inaccuracy:
        request.node.add_marker(pytest.mark.xfail(strict=True, raises=ArticleContradicted,
                                                  reason=f"documented inaccuracy: {claim.inaccuracy.reason}"))
    known = run_facts(request.config).expectations
    if known is not None and claim.id in known.expected and not unmet_conditions(known.when,
                                                                                 _facts(request, known.when)):
        expected = known.expected[claim.id]
        request.node.user_properties += results.expected(expected.reason, expected.status)
        request.node.add_marker(pytest.mark.xfail(strict=expected.status == "failed",
                                                  reason=f"known deviation ({known.path}): {expected.reason}"),
                                append=False)


def _label(claim: Claim) -> None:
    allure.dynamic.epic("Docker networking")
    allure.dynamic.feature(claim.title)
    allure.dynamic.story(claim.id)
    allure.dynamic.tag(claim.kind)
    allure.dynamic.description("\n\n".join([claim.statement] + [f"> {s.quote}\n\n— {s.doc}" for s in claim.sources]))
    for source in claim.sources:
        allure.dynamic.link(f"fixtures/articles/{source.doc}", name=source.doc)


def _facts(request: pytest.FixtureRequest, wanted: dict[str, Any]) -> dict[str, Any]:
    """Host facts, and the engine's too when *wanted* names any (only claims about the engine need one)."""
    facts = host_facts()
    if set(wanted) - set(facts):
        engine = request.node.ihook.pytest_conformance_engine_facts(request=request)
        if engine is None:
            pytest.fail(f"the claim's conditions name engine facts ({', '.join(sorted(set(wanted) - set(facts)))}), "
                        "and no conftest gives them (hook pytest_conformance_engine_facts)", pytrace=False)
        facts |= engine
    return facts
