"""The plugin turns check outcomes into claim statuses and reports (no engine needed)."""

import json
import xml.etree.ElementTree as ET

import execnet
import pytest
from _pytest.reports import TestReport

from conformance import plugin
from conformance.catalog import load_catalog
from conformance.plugin import binding, recording
from conformance.reports import results, schema

CATALOG = """\
topic: demo
title: Demo
claims:
  - {id: demo/pass, kind: behaviour, statement: It MUST pass., sources: [{doc: a.txt, quote: q}], no_fault: demo}
  - {id: demo/fail, kind: behaviour, statement: It MUST fail., sources: [{doc: a.txt, quote: q}], no_fault: demo}
  - {id: demo/error, kind: behaviour, statement: It MUST error., sources: [{doc: a.txt, quote: q}], no_fault: demo}
  - id: demo/not-applicable
    kind: configuration
    statement: It MUST be skipped.
    applies: {userland_proxy: true}
    sources: [{doc: a.txt, quote: q}]
    no_fault: demo
  - id: demo/wrong-article
    kind: behaviour
    statement: Containers MUST get addresses by DHCP.
    inaccuracy: {reason: the engine assigns addresses itself, corrected: no DHCP is involved}
    sources: [{doc: a.txt, quote: q}]
    no_fault: demo
  - id: demo/article-was-right
    kind: behaviour
    statement: It MUST pass.
    inaccuracy: {reason: thought wrong, corrected: but it holds}
    sources: [{doc: a.txt, quote: q}]
    no_fault: demo
  - id: demo/corrected-broken
    kind: behaviour
    statement: Containers MUST get addresses by DHCP.
    inaccuracy: {reason: the engine assigns addresses itself, corrected: the address is there at once}
    sources: [{doc: a.txt, quote: q}]
    no_fault: demo
"""

CONFTEST = """\
def pytest_conformance_engine_facts(request):
    return {"userland_proxy": False}
"""

CHECKS = """\
import pytest
from conformance.plugin import article_claim, claims

@pytest.fixture
def broken():
    raise RuntimeError("the lab fell over")

@claims("demo/pass", "demo/article-was-right")
def test_passes(claim, evidence):
    evidence.text("note", "seen")

@claims("demo/fail")
def test_fails(claim):
    assert 1 == 2, "the host disagrees"

@claims("demo/wrong-article")
def test_contradicts_article(claim):
    article_claim(False, "no DHCP exchange was seen")

@claims("demo/corrected-broken")
def test_corrected_expectation_broken(claim):
    assert False, "eth0 had no address at start"

@claims("demo/error")
def test_errors(claim, broken):
    pass

@claims("demo/not-applicable")
def test_not_applicable(claim):
    pass
"""


@pytest.fixture
def run_demo(pytester, monkeypatch, tmp_path):
    """Run the demo checks against the demo catalog; return pytest's result and the report directory."""
    catalog_dir = tmp_path / "catalog"
    catalog_dir.mkdir()
    (catalog_dir / "demo.yaml").write_text(CATALOG)
    for module in (plugin, binding, recording):
        monkeypatch.setattr(module, "catalog", lambda: load_catalog(catalog_dir))
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_demo=CHECKS)
    report_dir = tmp_path / "out"

    def run(*args):
        result = pytester.runpytest_inprocess("-p", "conformance.plugin", f"--report-dir={report_dir}", *args)
        return result, report_dir

    return run


@pytest.fixture
def outcome(run_demo):
    result, report_dir = run_demo()
    report = json.loads((report_dir / "report.json").read_text())
    return result, report, report_dir


def test_each_claim_gets_its_status(outcome):
    _, report, _ = outcome
    statuses = {c["id"]: c["status"] for c in report["claims"]}
    assert statuses == {
        "demo/pass": "passed",
        "demo/fail": "failed",
        "demo/error": "error",
        "demo/not-applicable": "skipped",
        "demo/wrong-article": "xfailed",
        "demo/article-was-right": "xpassed",
        "demo/corrected-broken": "failed",  # only ArticleContradicted is the expected failure
    }


def test_messages_carry_the_evidence_and_reasons(outcome):
    _, report, _ = outcome
    claims = {c["id"]: c for c in report["claims"]}
    assert "the host disagrees" in claims["demo/fail"]["message"]
    assert "the lab fell over" in claims["demo/error"]["message"]
    assert claims["demo/not-applicable"]["message"].startswith("not applicable: userland_proxy=False")
    assert "the engine assigns addresses itself" in claims["demo/wrong-article"]["message"]
    assert claims["demo/pass"]["evidence"] == ["evidence/demo_pass/note.txt"]


def test_report_json_contract(outcome):
    _, report, _ = outcome
    assert schema.problems(report) == []
    assert {"run_info", "claims"} <= set(report)
    assert {"kernel", "distro", "start", "end"} <= set(report["run_info"])
    for claim in report["claims"]:
        assert {"id", "status", "statement", "sources", "duration", "message", "evidence"} <= set(claim)
    assert report["coverage"]["a.txt"] == {
        "catalogued": 7, "checked": 7, "out_of_scope": 0,
        "outcomes": {"passed": 1, "failed": 2, "skipped": 1, "xfailed": 1, "xpassed": 1, "error": 1},
    }


def test_side_reports_are_written(outcome):
    _, _, report_dir = outcome
    assert (report_dir / "junit.xml").is_file()
    assert "demo/fail" in (report_dir / "summary.md").read_text()
    results = [json.loads(p.read_text()) for p in (report_dir / "allure-results").glob("*-result.json")]
    stories = {label["value"] for r in results for label in r["labels"] if label["name"] == "story"}
    assert "demo/pass" in stories
    environment = (report_dir / "allure-results" / "environment.properties").read_text()
    assert "kernel=" in environment
    categories = json.loads((report_dir / "allure-results" / "categories.json").read_text())
    assert {"Claim violated by the host", "Broken environment", "Documented inaccuracy"} <= {
        c["name"] for c in categories}


def junit_properties(report_dir, name: str) -> list[tuple[str, str]]:
    (case,) = [case for case in ET.parse(report_dir / "junit.xml").iter("testcase") if case.get("name") == name]
    return [(p.get("name"), p.get("value")) for p in case.iter("property")]


def test_junit_shows_each_checks_claim_tier_and_evidence_as_properties(outcome):
    _, _, report_dir = outcome
    assert junit_properties(report_dir, "test_passes[demo/pass]") == [
        ("claim", "demo/pass"), ("tier", "full"), ("evidence", "evidence/demo_pass/note.txt")]
    assert junit_properties(report_dir, "test_fails[demo/fail]") == [("claim", "demo/fail"), ("tier", "full")]


def test_the_properties_cross_from_an_xdist_worker_as_they_were_written():
    """Under -n N, a phase report goes from a worker to the controller as pytest serializes it and execnet
    sends it: the properties are plain data, and read back on the other side as they were written."""
    written = [*results.bound("demo/pass", "audit"), *results.expected("it varies", "flaky"),
               results.evidence("evidence/demo_pass/a.txt"), results.evidence("evidence/demo_pass/b.pcap"),
               results.STRICT_XPASS]
    report = TestReport("test_demo.py::test_passes[demo/pass]", ("test_demo.py", 1, "test_passes"), {}, "failed",
                        None, "call", [], 0.1, user_properties=written)
    received = TestReport._from_json(execnet.loads(execnet.dumps(report._to_json())))
    assert results.Properties.of(received.user_properties) == results.Properties(
        claim="demo/pass", tier="audit", expectation="it varies", expected_status="flaky",
        evidence=("evidence/demo_pass/a.txt", "evidence/demo_pass/b.pcap"), strict_xpass=True)


def test_an_audit_tier_check_may_read_but_not_create(run_demo, pytester):
    """Which fixtures create is conformance/plugin/needs.py's: an audit-tier check taking one is a usage error
    that names what it takes; one that takes only the engine and evidence runs."""
    fixtures = ("import pytest\nfrom conformance.plugin import claims\n\n"
                "@pytest.fixture\ndef engine():\n    return 'connected'\n\n"
                "@pytest.fixture\ndef run():\n    return 'a run'\n\n"
                "@pytest.fixture\ndef scope(run):\n    return 'a scope'\n\n")
    pytester.makepyfile(test_demo=fixtures + '@claims("demo/pass", tier="audit")\n'
                                            "def test_reads(claim, engine, evidence):\n    pass\n")
    result, _ = run_demo("--tier", "audit")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    pytester.makepyfile(test_demo=fixtures + '@claims("demo/pass", tier="audit")\n'
                                            "def test_creates(claim, engine, scope):\n    pass\n")
    result, _ = run_demo()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert ("test_demo.py::test_creates[demo/pass] is marked tier='audit' but creates things (it needs 'run', "
            "'scope')") in result.stderr.str()


def test_exit_code_is_nonzero_on_unexpected_outcomes(outcome):
    result, _, _ = outcome
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_exit_code_is_zero_when_only_expected_outcomes(run_demo):
    result, _ = run_demo("-k", "passes and pass- or not_applicable or contradicts")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()


def test_engine_facts_come_from_the_conftests_hook(run_demo, pytester):
    """The plugin knows no fixture by name: without the hook's answer, a claim about the engine errors, naming it."""
    (pytester.path / "conftest.py").unlink()
    _, report_dir = run_demo("-k", "not_applicable")
    (claim,) = json.loads((report_dir / "report.json").read_text())["claims"]
    assert claim["status"] == "error"
    assert claim["message"] == ("the claim's conditions name engine facts (userland_proxy), and no conftest gives "
                                "them (hook pytest_conformance_engine_facts)")


def test_expectations_turn_a_known_deviation_into_an_expected_failure(run_demo, tmp_path):
    known = tmp_path / "known.yaml"
    known.write_text("when: {userland_proxy: false}\n"
                     "expected:\n"
                     "  demo/fail: {status: failed, reason: this host class disagrees}\n"
                     "  demo/pass: {status: failed, reason: it used to fail}\n")
    result, report_dir = run_demo(f"--expectations={known}", "-k", "fails or passes")
    report = json.loads((report_dir / "report.json").read_text())
    claims = {c["id"]: c for c in report["claims"]}
    assert claims["demo/fail"]["status"] == "xfailed"
    assert claims["demo/fail"]["expectation"] == "this host class disagrees"
    assert junit_properties(report_dir, "test_fails[demo/fail]") == [
        ("claim", "demo/fail"), ("tier", "full"), ("expectation", "this host class disagrees"),
        ("expected_status", "failed")]
    assert claims["demo/pass"]["status"] == "xpassed", "a deviation that is gone must be flagged"
    assert claims["demo/pass"]["message"] == f"[XPASS(strict)] known deviation ({known}): it used to fail"
    assert report["run_info"]["expectations"] == str(known)
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_flaky_known_deviation_is_xfailed_when_it_fails_and_passed_when_it_passes(run_demo, tmp_path):
    known = tmp_path / "known.yaml"
    known.write_text("expected:\n"
                     "  demo/fail: {status: flaky, reason: this engine varies}\n"
                     "  demo/pass: {status: flaky, reason: this engine varies}\n")
    _, report_dir = run_demo(f"--expectations={known}", "-k", "fails or passes")
    claims = {c["id"]: c for c in json.loads((report_dir / "report.json").read_text())["claims"]}
    assert (claims["demo/fail"]["status"], claims["demo/fail"]["message"]) == (
        "xfailed", f"known deviation ({known}): this engine varies")
    assert (claims["demo/pass"]["status"], claims["demo/pass"]["message"]) == ("passed", "")


def test_a_known_deviation_of_a_documented_inaccuracy_takes_any_failure(run_demo, tmp_path):
    """Without the file, only ArticleContradicted is the inaccuracy's expected failure; a known deviation of
    the claim's host class is any failure, and it is the marker pytest evaluates."""
    known = tmp_path / "known.yaml"
    known.write_text("expected:\n  demo/corrected-broken: {status: failed, reason: no address here at first}\n")
    result, report_dir = run_demo(f"--expectations={known}", "-k", "corrected_expectation_broken")
    (claim,) = json.loads((report_dir / "report.json").read_text())["claims"]
    assert (claim["status"], claim["message"]) == ("xfailed", f"known deviation ({known}): no address here at first")
    assert result.ret == pytest.ExitCode.OK


def test_expectations_apply_only_where_their_conditions_hold(run_demo, tmp_path):
    known = tmp_path / "known.yaml"
    known.write_text("when: {userland_proxy: true}\nexpected:\n  demo/fail: {status: failed, reason: r}\n")
    _, report_dir = run_demo(f"--expectations={known}", "-k", "fails")
    report = json.loads((report_dir / "report.json").read_text())
    assert [c["status"] for c in report["claims"]] == ["failed"]


def test_a_bad_expectations_file_is_a_usage_error(run_demo, tmp_path):
    known = tmp_path / "known.yaml"
    known.write_text("expected:\n  demo/nonexistent: {status: failed, reason: r}\n")
    result, _ = run_demo(f"--expectations={known}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "no such claim" in result.stderr.str()


def test_workers_facts_merge_into_one_run_info():
    """Each xdist worker sends its facts (builtin types only); the controller's run_info has the first
    worker's lab and run id, every worker's run id, and the sums of what they created, found and leaked."""
    from conformance.lab.tally import CREATED
    from conformance.plugin.preflight import Problem
    from conformance.plugin.run_facts import RunFacts

    workers = []
    for run_id, leaks in (("aaaaaa", 0), ("bbbbbb", 2)):
        facts = RunFacts()
        facts.ran(run_id)
        facts.described({"run_id": run_id, "engine_version": "20.10.24"})
        facts.found([Problem("no veth", "a kernel with CONFIG_VETH", "namespaces")])
        facts.guarded({"uplinks": ["eth0"], "leaks": leaks, "packets": ["p"] * leaks,
                       **({"pcaps": [f"{run_id}.pcap"]} if leaks else {})})
        sent = json.loads(json.dumps(facts.to_wire()))
        workers.append(RunFacts.from_wire(sent | {"created": {"containers": 3}}))
    controller = RunFacts()
    info = controller.run_info(workers, tier="full", pytest_args=[])
    assert (info["run_id"], info["run_ids"], info["workers"]) == ("aaaaaa", ["aaaaaa", "bbbbbb"], 2)
    assert info["engine_version"] == "20.10.24" and info["start"] == controller.start
    assert info["created"]["containers"] == 6 + CREATED["containers"]  # and this process's own
    assert info["problems"] == ["no veth — a kernel with CONFIG_VETH"]
    assert info["egress_guard"] == {"uplinks": ["eth0"], "leaks": 2, "packets": ["p", "p"], "pcaps": ["bbbbbb.pcap"]}
    assert schema.problems({"schema": "docker-net-conformance/report/v1", "run_info": info, "totals": {},
                            "claims": [], "coverage": {}}) == []


def test_plain_pytest_loads_the_plugin_and_its_halves_without_a_warning(pytester):
    """``pytest -p conformance.plugin``, in a fresh process: binding and recording come with it, and pytest has
    nothing to say about modules it could not rewrite."""
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "conformance.plugin", f"--report-dir={pytester.path / 'out'}",
                                           "--fixtures")
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()
    assert "evidence" in result.stdout.str(), "recording's fixture is missing"
    assert "warnings summary" not in result.stdout.str() and "cannot be rewritten" not in result.stderr.str()


def test_a_claim_that_cannot_be_checked_is_an_error_naming_what_was_missing(run_demo, pytester, tmp_path):
    """prerequisite() fails in a fixture or in the check itself, and even under a known deviation that takes any
    failure: the claim is an error with the prerequisite's line, never failed, xfailed or passed."""
    pytester.makepyfile(test_demo="""
import pytest
from conformance.plugin import claims, prerequisite

@pytest.fixture
def egress():
    prerequisite(False, "egress: no answer from upstream")

@claims("demo/pass")
def test_in_a_fixture(claim, egress):
    pass

@claims("demo/fail")
def test_in_the_check(claim):
    prerequisite(True, "never shown")
    prerequisite(False, "a resolver: no answer for probe.example")
""")
    known = tmp_path / "known.yaml"
    known.write_text("expected:\n  demo/fail: {status: failed, reason: deviates here}\n")
    result, report_dir = run_demo("--expectations", str(known))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    claims = {c["id"]: c for c in json.loads((report_dir / "report.json").read_text())["claims"]}
    assert claims["demo/pass"]["status"] == claims["demo/fail"]["status"] == "error"
    assert claims["demo/pass"]["message"] == "not checkable, a prerequisite is missing: egress: no answer from upstream"
    assert claims["demo/fail"]["message"] == ("not checkable, a prerequisite is missing: a resolver: no answer for "
                                              "probe.example")
