"""The reports as an attacker on a shared host sees them: a link planted where a report goes, a report directory
someone else owns, a report from a fleet host that carries links, Markdown or YAML, and inputs that are not what
they claim to be.  Each must leave every other file as it was and cost the reader one clear line."""

import json
import os
import re
import stat
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from test_report_tools import conformance, make_report

from conformance import cli
from conformance.catalog import catalog
from conformance.plugin import expectations
from conformance.reports import allure_env, files, report_json, schema, summary
from conformance.reports.diff import diff, render
from conformance.reports.matrix import Host, page

SECRET = "# root only: a file the attacker wants overwritten\n"
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the attack is on root's writes")


@pytest.fixture
def tool(capsys):
    """A report tool run in this process, as `docker-net-conformance ARGS` runs it (faster than a subprocess;
    tests/test_report_tools.py runs them as a user does)."""
    def run(*args):
        status = cli.main([str(arg) for arg in args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, status, out, err)
    return run


@pytest.fixture
def secret(tmp_path):
    """A root-only file outside the report directory, the target of every planted link."""
    path = tmp_path / "shadow"
    path.write_text(SECRET)
    path.chmod(0o600)
    return path


def one_line(completed, status=2):
    assert completed.returncode == status, (completed.returncode, completed.stdout, completed.stderr)
    assert completed.stderr.startswith("conformance: ") and completed.stderr.count("\n") == 1, completed.stderr
    assert "Traceback" not in completed.stderr
    return completed.stderr


def a_report(tmp_path, name="r", **run_info):
    return json.loads(make_report(tmp_path / name / "report.json", {"ports/dnat-rule": "failed"},
                                  **run_info).read_text())


# --- writes through links ---

@pytest.mark.parametrize("name", ["report.json", "summary.md", "environment.properties"])
def test_a_link_at_a_report_file_is_replaced_not_followed(tmp_path, secret, name):
    report = a_report(tmp_path)
    out = tmp_path / "out"
    out.mkdir(mode=0o755)
    (out / name).symlink_to(secret)
    if name == "report.json":
        report_json.write(report, out / name)
    elif name == "summary.md":
        summary.write(report, out / name)
    else:
        allure_env.write(out, report["run_info"])
    assert secret.read_text() == SECRET
    assert not (out / name).is_symlink() and (out / name).stat().st_size > 0


def test_merge_replaces_a_link_at_matrix_md(tmp_path, secret):
    out = tmp_path / "matrix"
    out.mkdir(mode=0o755)
    (out / "matrix.md").symlink_to(secret)
    report = make_report(tmp_path / "a" / "report.json", {})
    completed = conformance("merge", report, "--out", out)
    assert completed.returncode == 0, completed.stderr
    assert secret.read_text() == SECRET
    assert not (out / "matrix.md").is_symlink() and "# Conformance matrix" in (out / "matrix.md").read_text()


def test_update_expectations_refuses_an_out_that_is_a_link(tmp_path, secret, tool):
    out = tmp_path / "known.yaml"
    out.symlink_to(secret)
    report = make_report(tmp_path / "r" / "report.json", {"ports/dnat-rule": "failed"})
    line = one_line(tool("update-expectations", report, "--out", out))
    assert "symbolic link" in line and "root only" not in line
    assert secret.read_text() == SECRET and out.is_symlink()


def unsafe(kind, path, secret):
    """A report directory the attacker prepared: theirs, open to everyone, or a link into root's files."""
    if kind == "link":
        path.symlink_to(secret.parent)
        return
    path.mkdir()
    (path / "report.json").symlink_to(secret)
    (path / "matrix.md").symlink_to(secret)
    if kind == "nobody":
        os.chown(path, 65534, 65534)
    else:
        path.chmod(0o777)


UNSAFE = [pytest.param("nobody", marks=root_only), "world-writable", "link"]


@pytest.mark.parametrize("kind", UNSAFE)
def test_a_report_directory_someone_else_can_write_is_refused(tmp_path, secret, kind):
    out = tmp_path / "theirs"
    unsafe(kind, out, secret)
    with pytest.raises(files.WriteError, match="refusing"):
        files.checked_dir(out)
    with pytest.raises(files.WriteError, match="refusing"):
        files.write_atomic(out / "report.json", "{}\n")
    assert secret.read_text() == SECRET


@pytest.mark.parametrize("kind", UNSAFE)
def test_merge_refuses_an_out_directory_someone_else_can_write(tmp_path, secret, kind, tool):
    out = tmp_path / "theirs"
    unsafe(kind, out, secret)
    report = make_report(tmp_path / "a" / "report.json", {})
    line = one_line(tool("merge", report, "--out", out))
    assert str(out) in line and "refusing" in line
    assert secret.read_text() == SECRET and not (secret.parent / "matrix.html").exists()


@pytest.mark.parametrize("kind", UNSAFE)
def test_a_run_refuses_a_report_directory_someone_else_can_write(pytester, tmp_path, secret, kind):
    out = tmp_path / "theirs"
    unsafe(kind, out, secret)
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest_inprocess("-p", "conformance.plugin", f"--report-dir={out}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1 and "--report-dir" in errors[0] and "refusing" in errors[0], errors
    assert secret.read_text() == SECRET and not (secret.parent / "junit.xml").exists()


def test_a_created_report_directory_is_the_callers_and_closed_to_others(tmp_path):
    made = files.checked_dir(tmp_path / "new" / "reports")
    info = made.stat()
    assert info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) == 0o755


# --- reports that attack their reader ---

HOSTILE = ("evil\n# Owned\n<script>alert(1)</script> [click](javascript:alert(1)) ![x](https://e.example/x.png) "
           "*b* _i_ `code` | cell &#x3C;i&#x3E;")


def hostile_report(tmp_path, name="hostile"):
    """A fleet host's report: valid by the schema, every free-text field it has carrying Markdown and HTML."""
    path = make_report(tmp_path / name / "report.json", {"ports/dnat-rule": "failed"}, hostname=HOSTILE,
                       kernel=HOSTILE, distro=HOSTILE, engine_version=HOSTILE)
    report = json.loads(path.read_text())
    for claim in report["claims"]:
        if claim["id"] == "ports/dnat-rule":
            claim["message"] = HOSTILE
            claim["statement"] = HOSTILE
            claim["topic"] = HOSTILE
    report["coverage"] = {HOSTILE: {"catalogued": 1, "checked": 1, "out_of_scope": 0, "outcomes": {HOSTILE: 1}}}
    path.write_text(json.dumps(report))
    assert schema.problems(report) == []
    return path


def assert_inert_markdown(text):
    """No Markdown or HTML of the hostile fields took effect: no tag, link, image or heading of theirs."""
    assert re.search(r"(?<!\\)[<>]", text) is None, text  # no tag: the tools write none themselves
    for raw in ("](", "![", "[click]", "`code`", "*b*", "_i_"):
        assert raw not in text, (raw, text)
    assert "\\<script\\>" in text and "\\[click\\]" in text and "\\| cell" in text
    assert re.search(r"(?<!\\)&#x3C;", text) is None
    assert not any(line.startswith("# Owned") for line in text.splitlines())


@pytest.mark.parametrize("evidence", ["javascript:alert(document.domain)", "JavaScript:alert(1)", "data:text/html,x",
                                      "https://e.example/x", "/etc/shadow", "../../etc/shadow",
                                      "evidence/../../etc/shadow", "evidence/a\nb", "evidence/a\x1b[31m",
                                      "evidence\\..\\x", "\\\\e.example\\x", "", "evidence/x\n"])
def test_the_schema_refuses_an_evidence_path_that_is_not_a_relative_file(tmp_path, evidence, tool):
    report = a_report(tmp_path)
    report["claims"][0]["evidence"] = [evidence]
    assert any("evidence" in problem for problem in schema.problems(report)), evidence
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(report))
    line = one_line(tool("merge", path, "--out", tmp_path / "matrix"))
    assert "evidence" in line
    assert not (tmp_path / "matrix").exists()


def test_the_schema_keeps_every_evidence_path_the_suite_writes(tmp_path):
    report = a_report(tmp_path)
    report["claims"][0]["evidence"] = ["evidence/egress_masquerade-source/bridge.pcap",
                                       "evidence/x/198.51.100.1-c.pcap", "evidence/a_b/with space.txt",
                                       "evidence/ü/état.json"]
    assert schema.problems(report) == []


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attributes, self.hrefs, self.csp = set(), set(), [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        self.attributes |= set(attrs)
        if tag == "a":
            self.hrefs.append(attrs["href"])
        if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy":
            self.csp = attrs["content"]


def test_the_matrix_page_quotes_every_href_and_forbids_scripts(tmp_path):
    """Even an evidence path the schema would refuse cannot become a link that runs: it is quoted as a path."""
    claim = {"id": "ports/dnat-rule", "topic": HOSTILE, "status": "failed", "message": HOSTILE + '" onmouseover="x',
             "statement": HOSTILE, "evidence": ["javascript:alert(document.domain)"]}
    text = page([Host(HOSTILE, tmp_path, {claim["id"]: claim})], tmp_path)
    tags = Tags()
    tags.feed(text)
    assert tags.tags <= {"html", "head", "meta", "title", "style", "body", "h1", "table", "thead", "tbody", "tr",
                         "th", "td", "code", "a"}, tags.tags
    assert tags.hrefs == ["javascript%3Aalert%28document.domain%29"]
    assert not [name for name in tags.attributes if name.startswith("on")], tags.attributes
    assert tags.csp and "default-src 'none'" in tags.csp and "script-src" not in tags.csp


def test_hostile_fields_are_inert_in_every_markdown_report(tmp_path):
    hostile = hostile_report(tmp_path)
    plain = make_report(tmp_path / "plain" / "report.json", {})
    merged = conformance("merge", plain, hostile, "--out", tmp_path / "matrix")
    assert merged.returncode == 0, merged.stderr
    assert_inert_markdown((tmp_path / "matrix" / "matrix.md").read_text())
    diffed = conformance("diff", plain, hostile)
    assert diffed.returncode == 1, diffed.stderr
    assert_inert_markdown(diffed.stdout)
    assert_inert_markdown(summary.render(json.loads(hostile.read_text())))


def test_hostile_mutation_fields_are_inert_in_the_summary(tmp_path):
    report = a_report(tmp_path)
    report["mutation"] = {"score": 0.5, "caught": 1, "applied": 2, "missed": [HOSTILE], "no_fault": [],
                          "faults": {HOSTILE: {"why": HOSTILE, "caught": 1, "applied": 2}},
                          "configurations": {HOSTILE: {"why": HOSTILE, "unexplained": {"a/b": HOSTILE},
                                                       "expected": {"a/b": HOSTILE}}},
                          "healthy_unexplained": {"a/b": HOSTILE},
                          "checks": {"a/b": {"killed_by": [HOSTILE], "missed_by": [HOSTILE]}}}
    assert_inert_markdown(summary.render(report))


def test_a_diff_names_its_files_inertly():
    text = render(diff({"run_info": {}, "claims": []}, {"run_info": {}, "claims": []}), "a`](x)", "b\n# h")
    assert "](" not in text and "\n# h" not in text


def test_a_hostname_cannot_inject_yaml_into_an_expectations_file(tmp_path, tool):
    injected = "evil\nexpected: {}\nextra: 1\n\x85when: {kernel: '0'}\u2028#"
    report = make_report(tmp_path / "r" / "report.json", {"ports/dnat-rule": "failed"}, hostname=injected,
                         run_id="r\nextra: 2", kernel="6.1.0\nextra: 3", iptables_variant="legacy")
    data = json.loads(report.read_text())
    data["claims"][[c["id"] for c in data["claims"]].index("ports/dnat-rule")]["message"] = "x\nextra: 4\n- [y"
    report.write_text(json.dumps(data))
    out = tmp_path / "known.yaml"
    completed = tool("update-expectations", report, "--out", out)
    assert completed.returncode == 0, completed.stderr
    text = out.read_text()
    header = text[:text.index("\nwhen:")].splitlines()
    assert all(line.startswith("#") for line in header), header
    loaded = expectations.load(out, catalog().claims)
    assert loaded.when == {"kernel": "6.1.0\nextra: 3", "engine_version": "20.10.24", "iptables_variant": "legacy"}
    assert list(loaded.expected) == ["ports/dnat-rule"]
    assert set(yaml.safe_load(text)) == {"when", "expected"}


# --- bad input gives one line ---

def test_a_surrogate_in_a_report_is_refused_and_overwrites_nothing(tmp_path, tool):
    path = make_report(tmp_path / "r" / "report.json", {"ports/dnat-rule": "failed"})
    path.write_text(path.read_text().replace("AssertionError: it broke", "\\ud800 broke", 1))
    out = tmp_path / "matrix"
    out.mkdir()
    (out / "matrix.md").write_text("old matrix\n")
    known = tmp_path / "known.yaml"
    known.write_text("expected: {}\n")
    assert "surrogate" in one_line(tool("merge", path, "--out", out))
    assert "surrogate" in one_line(tool("update-expectations", path, "--out", known))
    assert "surrogate" in one_line(tool("diff", path, path))
    assert (out / "matrix.md").read_text() == "old matrix\n" and known.read_text() == "expected: {}\n"


def test_text_that_cannot_be_encoded_touches_nothing(tmp_path):
    path = tmp_path / "matrix.md"
    path.write_text("old\n")
    with pytest.raises(files.WriteError, match=r"surrogate|encode"):
        files.write_atomic(path, "new \ud800\n")
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["matrix.md"]


@pytest.mark.parametrize(("content", "why"), [
    (b"\xff\xfe{", "UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "nested"),
    (b'{"schema": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"}", "nested"),
    (b"[]", "not a"),
    (b"", "not a readable JSON report"),
])
def test_a_file_that_is_not_a_report_is_one_line_and_exit_2(tmp_path, content, why, tool):
    path = tmp_path / "report.json"
    path.write_bytes(content)
    for args in (("diff", path, path), ("merge", path, "--out", tmp_path / "m"),
                 ("update-expectations", path, "--out", tmp_path / "k.yaml")):
        assert why in one_line(tool(*args))
    assert sorted(os.listdir(tmp_path)) == ["report.json"]


def test_an_out_that_is_a_file_or_a_directory_is_one_line_and_exit_2(tmp_path, tool):
    report = make_report(tmp_path / "r" / "report.json", {"ports/dnat-rule": "failed"})
    taken = tmp_path / "taken"
    taken.write_text("mine\n")
    assert "not a directory" in one_line(tool("merge", report, "--out", taken))
    assert "not a directory" in one_line(tool("merge", report, "--out", taken / "matrix"))
    assert taken.read_text() == "mine\n"
    directory = tmp_path / "dir.yaml"
    directory.mkdir()
    assert "not a regular file" in one_line(tool("update-expectations", report, "--out", directory))
    assert os.listdir(directory) == []


@pytest.mark.parametrize("content", [
    b"- a\n- b\n",
    b"- {when: 1}\n",
    b"just a string\n",
    b"expected: [ports/dnat-rule]\n",
    b"when: [1, 2]\n",
    b"when: {kernel: [1]}\n",
    b"expected:\n  ports/dnat-rule: {status: failed, reason: [1]}\n",
    b"expected:\n  ports/dnat-rule: {status: [failed], reason: x}\n",
    b"expected:\n  ? [a]\n  : {status: failed, reason: x}\n",
    b"expected: {ports/dnat-rule: {status: failed, reason: x, extra: 1}}\n",
    b"\xff\xfeexpected: {}\n",
    b"expected: {a: &a [*a]}\n",
])
def test_an_expectations_file_of_the_wrong_types_is_one_line_and_exit_2(tmp_path, content, tool):
    report = make_report(tmp_path / "r" / "report.json", {"ports/dnat-rule": "failed"})
    known = tmp_path / "known.yaml"
    known.write_bytes(content)
    line = one_line(tool("update-expectations", report, "--out", known))
    assert str(known) in line
    assert known.read_bytes() == content
    with pytest.raises(expectations.ExpectationsError):
        expectations.load(known, catalog().claims)


def test_the_tools_bad_input_never_exits_1(tmp_path, tool):
    """1 is diff's word for a regression: an unreadable head is not one."""
    good = make_report(tmp_path / "r" / "report.json", {})
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\x80")
    assert tool("diff", good, bad).returncode == 2


def test_written_files_are_readable_by_the_fleets_upload(tmp_path):
    """The atomic write keeps what a plain write gave: a file others can read (the upload step runs as the
    runner's user), never one they can write."""
    path = files.write_atomic(tmp_path / "report.json", "{}\n")
    assert stat.S_IMODE(Path(path).stat().st_mode) & 0o044 == 0o044
    assert stat.S_IMODE(Path(path).stat().st_mode) & 0o022 == 0
