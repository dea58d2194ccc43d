"""The pytest plugin: parametrization from the catalog, result collection, reports.

It is loaded only where the checks run (``-p conformance.plugin``, which ``docker-net-conformance`` gives),
never auto-loaded into the environment's other pytest sessions; its options are conformance/options.py's.

A check declares the claims it verifies with ``@claims("topic/name", ...)`` and
takes a ``claim`` argument; the plugin parametrizes it over those catalog
entries, marks documented inaccuracies as strict expected failures, skips
claims whose ``applies`` conditions the engine does not meet, and at the end
writes report.json, summary.md, junit.xml and allure-results/ into --report-dir.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import allure
import pytest

from . import expectations, preflight
from .catalog import Claim, catalog, unmet_conditions
from .evidence import Evidence
from .lab.host import host_facts, host_info
from .lab.tally import CREATED
from .options import GROUP, OPTIONS, TIERS
from .reports import allure_env, report_json, summary
from .reports.results import ClaimResult, fold
from .scheduling import engine_free_first

RECORDER = pytest.StashKey["Recorder"]()
EXPECTATIONS = pytest.StashKey["expectations.Expectations | None"]()
EXPECTED = pytest.StashKey["expectations.Expected"]()
PROBLEMS = pytest.StashKey["list[preflight.Problem]"]()


def claims(*ids: str, tier: str = "full"):
    """Bind a check to the catalog claims it verifies.

    ``tier="audit"`` marks a check that only reads (the engine's API, rules, interfaces): it may take
    ``engine`` and ``evidence``, never a fixture that creates something (all of those depend on ``run``).
    """
    if tier not in TIERS:
        raise ValueError(f"tier must be one of {TIERS}")
    return pytest.mark.claims(*ids, tier=tier)


def tier_of(item: pytest.Item) -> str:
    marker = item.get_closest_marker("claims")
    return marker.kwargs.get("tier", "full") if marker else "full"


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


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(*GROUP)
    for option in OPTIONS:
        option.addoption(group)


# Sessions that only inform (help, markers, fixtures, collection: ``docker-net-conformance list``): the plugin
# checks their options but makes no report directory, reaches no engine and prints nothing.
INFORMATIONAL = ("version", "markers", "showfixtures", "show_fixtures_per_test", "collectonly")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.import_plugin("conformance.markers")  # the claims marker
    if config.option.help:
        return  # pytest stopped parsing at --help: the other options may not even hold their defaults
    if config.option.variant:
        if config.option.engine in ("system", "podman"):
            raise pytest.UsageError("--variant changes a private dockerd; it cannot apply to --engine "
                                    f"{config.option.engine}")
        config.option.engine = "private"
    if config.option.dockerd:
        if config.option.engine not in ("auto", "private"):
            raise pytest.UsageError("--dockerd starts a private engine; it cannot apply to --engine "
                                    f"{config.option.engine}")
        config.option.engine = "private"
    if config.option.tier == "audit":
        if config.option.engine in ("private", "podman"):
            raise pytest.UsageError("--tier audit creates nothing, so it cannot start a private engine")
        config.option.engine = "system"
    unknown = [c for c in config.option.claim if c not in catalog().claims]
    if unknown:
        raise pytest.UsageError(f"--claim: no such claim in the catalog: {', '.join(unknown)}")
    path = config.option.expectations
    try:
        config.stash[EXPECTATIONS] = expectations.load(path, catalog().claims) if path else None
    except expectations.ExpectationsError as exc:
        raise pytest.UsageError(f"--expectations: {exc}") from None
    if any(getattr(config.option, name, False) for name in INFORMATIONAL):
        return
    report_dir: Path = config.option.report_dir.resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    config.option.report_dir = report_dir
    # Set before junitxml's and allure's own configure hooks read them (tryfirst).
    if not getattr(config.option, "xmlpath", None):
        config.option.xmlpath = str(report_dir / "junit.xml")
    if not getattr(config.option, "allure_report_dir", None):
        config.option.allure_report_dir = str(report_dir / "allure-results")
        config.option.clean_alluredir = True
    config.stash[PROBLEMS] = preflight.environment(config.option.engine, config.option.dockerd)
    config.stash[RECORDER] = Recorder(config)
    config.pluginmanager.register(config.stash[RECORDER], "conformance-recorder")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """-n N (xdist's "load"): conformance/scheduling.py's ChecksScheduling."""
    if config.getvalue("dist") != "load":
        return None
    from .scheduling import ChecksScheduling

    return ChecksScheduling(config, log)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("claims")
    if marker is None or "claim" not in metafunc.fixturenames:
        return
    selected = [catalog()[claim_id] for claim_id in marker.args]
    metafunc.parametrize("claim", selected, ids=[c.id for c in selected])


def claim_of(item: pytest.Item) -> Claim | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("claim") if callspec else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted, audit = set(config.option.claim), config.option.tier == "audit"
    for item in items:
        if tier_of(item) == "audit" and "run" in getattr(item, "fixturenames", ()):
            raise pytest.UsageError(f"{item.nodeid} is marked tier='audit' but creates things (it needs 'run')")
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
        item.user_properties += [("claim", claim.id), ("tier", tier_of(item))]
        if claim.inaccuracy:
            item.add_marker(pytest.mark.xfail(strict=True, raises=ArticleContradicted,
                                              reason=f"documented inaccuracy: {claim.inaccuracy.reason}"))


@pytest.fixture(autouse=True)
def _claim_context(request: pytest.FixtureRequest) -> None:
    """Label the check in Allure, and skip it when the engine is outside the claim's ``applies``."""
    claim = claim_of(request.node)
    if claim is None:
        return
    allure.dynamic.epic("Docker networking")
    allure.dynamic.feature(claim.title)
    allure.dynamic.story(claim.id)
    allure.dynamic.tag(claim.kind)
    allure.dynamic.description("\n\n".join([claim.statement] + [f"> {s.quote}\n\n— {s.doc}" for s in claim.sources]))
    for source in claim.sources:
        allure.dynamic.link(f"fixtures/articles/{source.doc}", name=source.doc)
    if claim.applies:
        facts = _facts(request, claim.applies)
        unmet = unmet_conditions(claim.applies, facts)
        if unmet:
            details = ", ".join(f"{k}={facts.get(k)!r} (claim needs {v!r})" for k, v in unmet.items())
            pytest.skip(f"not applicable: {details}")
    known = request.config.stash[EXPECTATIONS]
    if known is not None and claim.id in known.expected and not unmet_conditions(known.when,
                                                                                 _facts(request, known.when)):
        request.node.stash[EXPECTED] = known.expected[claim.id]
        request.node.user_properties.append(("expectation", known.expected[claim.id].reason))


def require(request: pytest.FixtureRequest, what: str) -> None:
    """Fail the fixture (so every check that needs *what* errors) with the environment problem that takes it."""
    for problem in request.config.stash[PROBLEMS]:
        if problem.affects in ("everything", what):
            pytest.fail(str(problem), pytrace=False)


def _facts(request: pytest.FixtureRequest, wanted) -> dict:
    """Host facts, and the engine's too when *wanted* names any (only claims about the engine need one)."""
    facts = host_facts()
    if set(wanted) - set(facts):
        facts |= request.getfixturevalue("engine").facts()
    return facts


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A known deviation's failure is expected (xfailed); its pass means the file is stale (XPASS, strict)."""
    report = yield
    expected = item.stash.get(EXPECTED, None)
    if expected is None or report.when != "call":
        return report
    known = item.config.stash[EXPECTATIONS]
    assert known is not None  # EXPECTED is stashed only from a loaded expectations file
    source = known.path
    if report.failed and not str(report.longrepr).startswith("[XPASS(strict)]"):
        report.outcome, report.wasxfail = "skipped", f"known deviation ({source}): {expected.reason}"
    elif report.passed and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = (f"[XPASS(strict)] known deviation no longer happens: {expected.reason} "
                           f"— remove it from {source}")
    return report


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Evidence:
    claim = claim_of(request.node)
    return Evidence(request.config.option.report_dir, claim.id if claim else request.node.name,
                    request.node.user_properties)


class Recorder:
    """Collects each claim's outcome and writes the reports when the session ends.

    Under xdist every worker is a run of its own (its own id, lab and cleanup): each sends its
    run_info to the controller, which writes the one report.
    """

    def __init__(self, config: pytest.Config):
        self.config = config
        self.run_info: dict = {"start": _now()}
        self.results: dict[str, ClaimResult] = {}
        self.workers: dict[str, dict] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        properties = dict(report.user_properties)
        if "claim" in properties:
            result = self.results.setdefault(report.nodeid, ClaimResult(
                claim=str(properties["claim"]), nodeid=report.nodeid, tier=str(properties["tier"])))
            fold(result, report)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        info = getattr(node, "workeroutput", {}).get("conformance_run_info")
        if info:
            self.workers[node.gateway.id] = info

    def _run_info(self) -> dict:
        """This process's run_info; under xdist, the workers' merged: the engine part of any of them (they
        share the engine), and the ids of all their runs."""
        merged: dict = {}
        for worker in sorted(self.workers):
            for key, value in self.workers[worker].items():
                merged.setdefault(key, value)
        merged |= self.run_info
        problems = [str(p) for p in self.config.stash[PROBLEMS]]
        for info in [self.workers[w] for w in sorted(self.workers)]:
            problems += [p for p in info.get("problems", []) if p not in problems]
        ids = [self.workers[w]["run_id"] for w in sorted(self.workers) if "run_id" in self.workers[w]]
        if not self.workers and "run_id" in merged:
            ids = [merged["run_id"]]
        created = Counter(CREATED)
        for info in self.workers.values():
            created.update(info.get("created", {}))
        guards = [info["egress_guard"] for info in [self.run_info, *self.workers.values()] if "egress_guard" in info]
        guard = {"uplinks": sorted({u for g in guards for u in g["uplinks"]}),
                 "leaks": sum(g["leaks"] for g in guards),
                 "packets": [p for g in guards for p in g["packets"]],
                 "pcaps": [p for g in guards for p in g.get("pcaps", [])]} if guards else None
        return merged | {"run_ids": ids, "workers": len(self.workers), "created": dict(created),
                         "problems": problems, "egress_guard": guard}

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(self.config, "workerinput"):
            self.config.workeroutput["conformance_run_info"] = {  # type: ignore[attr-defined]  # xdist's
                **self.run_info, "created": dict(CREATED), "problems": [str(p) for p in self.config.stash[PROBLEMS]]}
            return
        if not self.results:
            return
        known = self.config.stash[EXPECTATIONS]
        run_info = {**host_info(), **self._run_info(), "end": _now(), "pytest_args": list(self.config.args),
                    "tier": self.config.option.tier,
                    "expectations": known.path if known else None}
        if (run_info["egress_guard"] or {}).get("leaks"):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        report = report_json.build(catalog(), list(self.results.values()), run_info)
        report_dir = self.config.option.report_dir
        report_json.write(report, report_dir / "report.json")
        summary.write(report, report_dir / "summary.md")
        allure_env.write(Path(self.config.option.allure_report_dir), run_info)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        info = self._run_info()
        guard = info["egress_guard"]
        if guard and guard["leaks"]:
            terminalreporter.section("EGRESS GUARD: packets of the suite left through an uplink", sep="!",
                                     red=True, bold=True)
            terminalreporter.write_line(f"{guard['leaks']} packets on {', '.join(guard['uplinks'])}; "
                                        f"captured in {', '.join(guard['pcaps'])}")
            for packet in guard["packets"]:
                terminalreporter.write_line(f"  {packet}")
        problems = info["problems"]
        if problems:
            terminalreporter.section("environment problems", sep="=", red=True, bold=True)
            for problem in problems:
                terminalreporter.write_line(problem)
        if self.results:
            terminalreporter.write_line(f"conformance reports: {self.config.option.report_dir}/"
                                        "{report.json,summary.md,junit.xml,allure-results}")
