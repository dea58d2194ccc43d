"""diff, merge and update-expectations, as a user runs them, on reports that follow the schema (no engine needed)."""

import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import pytest
import yaml

from conformance.catalog import catalog
from conformance.reports import report_json, schema
from conformance.reports.results import ClaimResult


def make_report(path, statuses, **run_info):
    """A report.json as the suite writes it, every catalogued claim passing unless *statuses* says otherwise."""
    results = [ClaimResult(claim=c.id, nodeid=f"check[{c.id}]", status=statuses.get(c.id, "passed"),
                           message="" if statuses.get(c.id, "passed") == "passed" else "AssertionError: it broke",
                           evidence=[f"evidence/{c.id.replace('/', '_')}/capture.pcap"])
               for c in catalog() if statuses.get(c.id) != "absent"]
    info = {"hostname": "runner", "kernel": "6.1.0", "start": "s", "end": "e", "run_id": "abc123",
            "engine_version": "20.10.24", "iptables_variant": "nf_tables", **run_info}
    path.parent.mkdir(parents=True, exist_ok=True)
    report_json.write(report_json.build(catalog(), results, info), path)
    return path


def conformance(*args):
    return subprocess.run([sys.executable, "-m", "conformance", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def test_written_reports_follow_the_schema(tmp_path):
    report = json.loads(make_report(tmp_path / "r.json", {"egress/masquerade-rule": "failed"}).read_text())
    assert report["schema"] == schema.schema()["$id"]
    assert schema.problems(report) == []


def test_schema_rejects_a_renamed_field(tmp_path):
    report = json.loads(make_report(tmp_path / "r.json", {}).read_text())
    report["claims"][0]["outcome"] = report["claims"][0].pop("status")
    assert any("status" in problem for problem in schema.problems(report))


def test_diff_names_exactly_the_changed_claims_and_fails_on_regression(tmp_path):
    base = make_report(tmp_path / "base.json", {"ports/dnat-rule": "failed", "usernet/drivers": "absent"})
    head = make_report(tmp_path / "head.json", {"egress/masquerade-rule": "failed", "host/port-conflict": "skipped",
                                                "none/own-namespace": "absent"}, kernel="6.2.0",
                       iptables_variant="legacy")
    completed = conformance("diff", base, head)
    out = completed.stdout
    assert completed.returncode == 1
    assert "| kernel | 6.1.0 | 6.2.0 |" in out and "| iptables_variant | nf_tables | legacy |" in out
    sections = {title: block for title, _, block in (part.partition("\n") for part in out.split("### ")[1:])}
    assert "`egress/masquerade-rule`" in sections["Regressed (1)"]
    assert "`ports/dnat-rule`" in sections["Improved (1)"]
    assert "`host/port-conflict`" in sections["Changed (1)"]
    assert "`usernet/drivers`" in sections["Appeared (1)"]
    assert "`none/own-namespace`" in sections["Disappeared (1)"]
    mentioned = {line.split("`")[1] for line in out.splitlines() if line.startswith(("| `", "- `"))}
    assert mentioned == {"egress/masquerade-rule", "ports/dnat-rule", "host/port-conflict", "usernet/drivers",
                         "none/own-namespace"}


def test_diff_of_identical_runs_passes(tmp_path):
    report = make_report(tmp_path / "r.json", {})
    completed = conformance("diff", report, report)
    assert completed.returncode == 0 and "same outcome" in completed.stdout


def test_tools_reject_a_file_that_is_not_a_report_in_one_line(tmp_path):
    (tmp_path / "junit.xml").write_text("<testsuite/>")
    completed = conformance("diff", tmp_path / "junit.xml", tmp_path / "junit.xml")
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1 and "not a readable JSON report" in completed.stderr


class Rows(HTMLParser):
    def __init__(self):
        super().__init__()
        self.claims, self.links = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-claim" in attrs:
            self.claims.append(attrs["data-claim"])
        if tag == "a":
            self.links.append(attrs["href"])


def test_merge_builds_one_row_per_claim_and_a_column_per_host(tmp_path):
    hosts = (
        ("system", {}, {}),
        ("legacy", {"ports/dnat-rule": "failed"}, {"iptables_variant": "legacy", "engine_variant": "iptables-legacy"}),
        ("no-proxy", {"ports/docker-proxy-per-binding": "skipped"}, {"engine_variant": "userland-proxy-off"}),
    )
    reports = [make_report(tmp_path / name / "report.json", statuses, hostname=name, **info)
               for name, statuses, info in hosts]
    completed = conformance("merge", *reports, "--out", tmp_path / "matrix")
    assert completed.returncode == 0, completed.stderr
    page = (tmp_path / "matrix" / "matrix.html").read_text()
    rows = Rows()
    rows.feed(page)
    assert sorted(rows.claims) == sorted(catalog().claims)
    assert "variant iptables-legacy" in page and "kernel 6.1.0" in page
    targets = {(tmp_path / "matrix" / href).resolve().relative_to(tmp_path).parts[:2] for href in rows.links}
    assert targets == {("system", "evidence"), ("legacy", "evidence"), ("no-proxy", "evidence")}
    markdown = (tmp_path / "matrix" / "matrix.md").read_text()
    assert "| **ports** |" in markdown and markdown.count("❌ FAILED") == 1


def test_update_expectations_records_failures_and_keeps_written_reasons(tmp_path):
    first = make_report(tmp_path / "1.json", {"ports/dnat-rule": "failed", "egress/masquerade-rule": "failed"})
    out = tmp_path / "known.yaml"
    completed = conformance("update-expectations", first, "--out", out)
    assert completed.returncode == 0 and "2 added" in completed.stdout
    text = out.read_text().replace("observed in run abc123: AssertionError: it broke", "our patched kernel", 1)
    out.write_text(text)
    second = make_report(tmp_path / "2.json", {"ports/dnat-rule": "failed"})
    completed = conformance("update-expectations", second, "--out", out)
    assert "0 added, 1 removed" in completed.stdout
    written = yaml.safe_load(out.read_text())
    assert list(written["expected"]) == ["ports/dnat-rule"]
    assert written["when"] == {"kernel": "6.1.0", "engine_version": "20.10.24", "iptables_variant": "nf_tables"}


def test_update_expectations_keeps_a_flaky_entry_whatever_one_run_did(tmp_path):
    out = tmp_path / "known.yaml"
    out.write_text("expected:\n  ports/dnat-rule: {status: flaky, reason: it varies}\n")
    passed = make_report(tmp_path / "1.json", {"ports/dnat-rule": "passed"})
    assert conformance("update-expectations", passed, "--out", out).returncode == 0
    kept = yaml.safe_load(out.read_text())["expected"]
    assert kept == {"ports/dnat-rule": {"status": "flaky", "reason": "it varies"}}


@pytest.mark.skipif(not shutil.which("chromium"), reason="needs chromium (bin/selftest installs it)")
def test_matrix_renders_in_headless_chromium(tmp_path):
    """The page needs no server: Chromium opens the file and its rendered DOM has every claim row."""
    reports = [make_report(tmp_path / name / "report.json", {}, hostname=name) for name in ("a", "b", "c")]
    assert conformance("merge", *reports, "--out", tmp_path / "matrix").returncode == 0
    rendered = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                               (tmp_path / "matrix" / "matrix.html").as_uri()],
                              capture_output=True, text=True, timeout=120, check=True).stdout
    rows = Rows()
    rows.feed(rendered)
    assert sorted(rows.claims) == sorted(catalog().claims)
    assert rendered.count("<th>a ") + rendered.count("<th>b ") + rendered.count("<th>c ") == 3
