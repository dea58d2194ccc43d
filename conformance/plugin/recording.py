"""Recording and reporting: each claim's outcome, the evidence fixture, the xdist workers' facts merged, and
report.json, summary.md and Allure's environment written when the session ends (junit.xml is pytest's)."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from ..catalog import catalog
from ..reports import allure_env, report_json, summary
from ..reports.results import STRICT_XPASS, ClaimResult, Properties, fold, not_checkable
from .binding import NotCheckable, claim_of
from .evidence import Evidence
from .run_facts import RunFacts, run_facts

WIRE = "conformance_run_facts"  # the key of a worker's facts in xdist's workeroutput


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Evidence:
    claim = claim_of(request.node)
    return Evidence(request.config.option.report_dir, claim.id if claim else request.node.name,
                    request.node.user_properties)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Name what pytest's verdict does not: a strict XPASS (the one way a check's call fails without raising:
    pytest reports an expected failure that did not happen as failed), and a claim that could not be checked
    (NotCheckable, in a fixture or the check).  Outermost, so it sees pytest's verdict."""
    report = yield
    if report.when == "call" and report.failed and call.excinfo is None:
        report.user_properties = [*report.user_properties, STRICT_XPASS]
    if call.excinfo is not None and call.excinfo.errisinstance(NotCheckable):
        report.user_properties = [*report.user_properties, not_checkable(str(call.excinfo.value))]
    return report


class Recorder:
    """Collects each claim's outcome and, when the session ends, writes the reports (the controller, under
    xdist: each worker sends it its facts instead)."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.results: dict[str, ClaimResult] = {}
        self.workers: dict[str, RunFacts] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        told = Properties.of(report.user_properties)
        if told.claim is not None:
            result = self.results.setdefault(report.nodeid, ClaimResult(claim=told.claim, nodeid=report.nodeid,
                                                                        tier=told.tier))
            fold(result, report)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        sent = getattr(node, "workeroutput", {}).get(WIRE)
        if sent:
            self.workers[node.gateway.id] = RunFacts.from_wire(sent)

    def run_info(self) -> dict[str, Any]:
        return run_facts(self.config).run_info([self.workers[w] for w in sorted(self.workers)],
                                               pytest_args=list(self.config.args), tier=self.config.option.tier)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        sent = getattr(self.config, "workeroutput", None)  # xdist's, on a worker
        if sent is not None:
            sent[WIRE] = run_facts(self.config).to_wire()
            return
        if not self.results:
            return
        run_info = self.run_info()
        if (run_info["egress_guard"] or {}).get("leaks"):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        report = report_json.build(catalog(), list(self.results.values()), run_info)
        report_dir = self.config.option.report_dir
        report_json.write(report, report_dir / "report.json")
        summary.write(report, report_dir / "summary.md")
        allure_env.write(Path(self.config.option.allure_report_dir), run_info)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        info = self.run_info()
        guard = info["egress_guard"]
        if guard and guard["leaks"]:
            terminalreporter.section("EGRESS GUARD: packets of the suite left through an uplink", sep="!",
                                     red=True, bold=True)
            terminalreporter.write_line(f"{guard['leaks']} packets on {', '.join(guard['uplinks'])}; "
                                        f"captured in {', '.join(guard['pcaps'])}")
            for packet in guard["packets"]:
                terminalreporter.write_line(f"  {packet}")
        if info["problems"]:
            terminalreporter.section("environment problems", sep="=", red=True, bold=True)
            for problem in info["problems"]:
                terminalreporter.write_line(problem)
        if self.results:
            terminalreporter.write_line(f"conformance reports: {self.config.option.report_dir}/"
                                        "{report.json,summary.md,junit.xml,allure-results}")
