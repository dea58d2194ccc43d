"""The command line a user meets first, run as a user runs it: the installed console script (and
``python -m conformance``) in a subprocess with a fresh environment, from a directory of its own."""

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from importlib.metadata import entry_points, version
from pathlib import Path

import pytest

from conformance.catalog import catalog
from conformance.cli import COMMANDS
from conformance.commands.run import CHECKS_DIR
from conformance.plugin.options import OPTIONS
from conformance.reports.report_json import SCHEMA

BIN = Path(sys.executable).parent
SCRIPT = BIN / "docker-net-conformance"
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="runs the suite, which needs root")


def cli(*args, cwd: Path, unprivileged: bool = False, module: bool = False, **env) -> subprocess.CompletedProcess:
    """The command in *cwd*, in a fresh environment; *unprivileged*: as a process with no capabilities and a uid
    that is not 0 (a user namespace of its own), and no engine at DOCKER_HOST."""
    command = [sys.executable, "-m", "conformance"] if module else [str(SCRIPT)]
    if unprivileged:
        if not shutil.which("unshare"):
            pytest.skip("no unshare(1) to drop root")
        command = ["unshare", "--user", "--", *command]
        env.setdefault("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    return run([*command, *map(str, args)], cwd, **env)


def fresh(cwd: Path, **env) -> dict[str, str]:
    """A fresh environment: the venv first on PATH, a HOME of its own beside *cwd* (scapy keeps a cache there)."""
    home = cwd.parent / "home"
    home.mkdir(exist_ok=True)
    return {"PATH": f"{BIN}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1", **env}


def run(command: list[str], cwd: Path, **env) -> subprocess.CompletedProcess:
    completed = subprocess.run(command, cwd=cwd, env=fresh(cwd, **env), capture_output=True, text=True, timeout=300)
    assert "Traceback (most recent call last)" not in completed.stdout + completed.stderr, \
        completed.stdout + completed.stderr
    return completed


@pytest.fixture
def empty(tmp_path) -> Path:
    """A working directory that must stay empty: informing a user creates no report directory."""
    directory = tmp_path / "cwd"
    directory.mkdir()
    yield directory
    assert sorted(p.name for p in directory.iterdir()) == []


def test_help_shows_the_suites_usage_first(empty):
    completed = cli("--help", cwd=empty)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("usage: docker-net-conformance [run] [OPTION ...] [PYTEST OPTION ...]")
    for name, command in COMMANDS.items():
        assert any(re.fullmatch(rf"  {re.escape(name)} +{re.escape(command.summary)}", line) for line in lines), name
    for option in OPTIONS:
        assert any(re.fullmatch(rf"  {re.escape(option.usage)} +{re.escape(option.help)}", line) for line in lines), \
            option.flag
    assert "pytest options pass through" in completed.stdout
    assert "docker-net-conformance run --help" in completed.stdout
    assert max(map(len, lines)) <= 100
    assert cli("-h", cwd=empty).stdout == completed.stdout
    assert cli("--help", cwd=empty, module=True).stdout == completed.stdout, "python -m conformance differs"


def test_run_help_is_pytests_with_the_suites_options_in_their_own_group(empty):
    completed = cli("run", "--help", cwd=empty)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("usage: docker-net-conformance run [options]")
    group = completed.stdout.split("\nDocker networking conformance:\n", 1)[1].split("\n\n", 1)[0]
    assert [line.split("=")[0].strip() for line in group.splitlines() if line.startswith("  --")] == \
        [option.flag for option in OPTIONS]


def test_a_subcommands_help_comes_from_its_entry(empty):
    for name in ("list", "diff", "cleanup"):
        completed = cli(name, "--help", cwd=empty)
        assert completed.returncode == 0, completed.stderr
        assert completed.stdout.startswith(f"usage: docker-net-conformance {name}")
        assert COMMANDS[name].summary in " ".join(completed.stdout.split())


def test_informational_runs_of_the_checks_create_nothing(empty):
    """--collect-only and --markers load the plugin into a session that runs no check: no report directory."""
    assert cli("--collect-only", "-q", "-k", "netns", cwd=empty).returncode == 0
    assert "@pytest.mark.claims" in cli("--markers", cwd=empty).stdout


def test_version_names_the_suite_the_catalog_and_the_report_schema(empty):
    completed = cli("--version", cwd=empty)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0] == f"docker-net-conformance {version('docker-net-conformance')}"
    claims = catalog()
    assert lines[1].startswith(f"catalog: {len(claims)} claims in {len(claims.topics)} topics")
    per_topic = {line.split()[0]: int(line.split()[1]) for line in lines[2:2 + len(claims.topics)]}
    assert per_topic == Counter(claim.topic for claim in claims)
    assert f"report schema: {SCHEMA}" in lines
    assert cli("-V", cwd=empty).stdout == completed.stdout
    assert cli("--version", cwd=empty, module=True).stdout == completed.stdout


def test_list_needs_no_root_and_no_engine(empty):
    completed = cli("list", "--json", cwd=empty, unprivileged=True)
    assert completed.returncode == 0, completed.stderr
    listed = json.loads(completed.stdout)
    claims = catalog()
    assert listed["selected"] == listed["catalogued"] == len(claims)
    assert sorted(c["id"] for c in listed["claims"]) == sorted(claims.claims), "not each claim once"
    for entry in listed["claims"]:
        claim = claims[entry["id"]]
        assert (entry["kind"], entry["topic"]) == (claim.kind, claim.topic)
        assert entry["sources"] == [{"doc": s.doc, "quote": s.quote} for s in claim.sources]
        assert entry["tier"] in ("audit", "full") and entry["nodeid"].endswith(f"[{claim.id}]")
    engine = {c["id"]: c["needs_engine"] for c in listed["claims"]}
    assert not any(needs for claim_id, needs in engine.items() if claim_id.startswith("netns/")), \
        "a raw-namespace claim is listed as needing an engine"
    assert all(needs for claim_id, needs in engine.items() if claim_id.startswith(("egress/", "ports/")))


def test_list_says_the_claims_needing_an_engine_of_their_own_need_an_engine(empty):
    """The two-host claims and the second engine's (conformance/plugin/needs.py's table, as their run knows it)."""
    completed = cli("list", "--json", cwd=empty, unprivileged=True)
    assert completed.returncode == 0, completed.stderr
    claims = json.loads(completed.stdout)["claims"]
    own = [c for c in claims if c["id"].startswith("hosts/") or "/test_configured.py::" in c["nodeid"]]
    assert {c["id"].split("/")[0] for c in own} >= {"hosts", "dns", "defaults"}
    assert [c["id"] for c in own if not c["needs_engine"]] == []


def test_list_as_text_names_each_claims_kind_tier_topic_engine_and_article(empty):
    completed = cli("list", "-k", "netns and veth", cwd=empty)
    assert completed.returncode == 0, completed.stderr
    header, *rows, footer = completed.stdout.splitlines()
    assert header.split() == ["CLAIM", "KIND", "TIER", "TOPIC", "ENGINE", "ARTICLE"]
    assert rows and all(re.match(r"netns/\S*veth\S* +behaviour +full +netns +no +\d{3}_\w+\.txt", r) for r in rows)
    assert footer == f"{len(rows)} of {len(catalog())} claims selected, 0 of them need an engine; nothing was run"


def listed(*selection, cwd: Path) -> list[str]:
    completed = cli("list", "--json", *selection, cwd=cwd, unprivileged=True)
    assert completed.returncode == 0, completed.stderr
    return [c["id"] for c in json.loads(completed.stdout)["claims"]]


def test_list_selects_by_claim_and_tier(empty):
    wanted = ["egress/masquerade-source", "none/only-loopback"]
    assert sorted(listed("--claim", wanted[0], "--claim", wanted[1], cwd=empty)) == wanted
    audit = cli("list", "--json", "--tier", "audit", cwd=empty, unprivileged=True)
    claims = json.loads(audit.stdout)["claims"]
    assert claims and {c["tier"] for c in claims} == {"audit"}
    assert len(claims) < len(catalog())
    assert listed("-v", "-x", "-k", "only-loopback", cwd=empty) == ["none/only-loopback"], "a run's other options"


@root_only
def test_list_selects_with_k_exactly_what_a_run_runs(empty, tmp_path):
    """... and what the same run through plain pytest runs (the README's form)."""
    expression = "netns and (veth or bridge) and not carries"
    ids = listed("-k", expression, cwd=empty)
    runs = {"cli": [str(SCRIPT)], "pytest": [str(BIN / "pytest"), "-p", "conformance.plugin", "-p", "no:cacheprovider",
                                             "--pyargs", "conformance.checks"]}
    for name, command in runs.items():
        completed = run([*command, "--report-dir", str(tmp_path / name), "-q", "-k", expression], empty)
        assert completed.returncode == 0, completed.stdout + completed.stderr
        report = json.loads((tmp_path / name / "report.json").read_text())
        assert ids and sorted(ids) == sorted(c["id"] for c in report["claims"]), name


def test_list_into_a_reader_that_stopped_reading_is_no_traceback(empty):
    """``docker-net-conformance list | head -1``: the reader closes before the list is written."""
    listing = subprocess.Popen([str(SCRIPT), "list"], cwd=empty, env=fresh(empty), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    listing.stdout.close()
    assert "Traceback" not in listing.communicate(timeout=300)[1]
    assert listing.returncode == 1


def test_list_usage_errors_are_one_line(empty):
    unknown = cli("list", "--claim", "egress/no-such-claim", cwd=empty, unprivileged=True)
    assert unknown.returncode == 4 and "no such claim in the catalog: egress/no-such-claim" in unknown.stderr
    bad = cli("list", "-k", "egress and (", cwd=empty, unprivileged=True)
    assert bad.returncode == 4 and "Wrong expression passed to '-k'" in bad.stderr


def test_a_mistyped_command_names_the_commands(empty):
    completed = cli("lsit", cwd=empty)
    assert completed.returncode == 4
    assert "no command 'lsit'" in completed.stderr and ", ".join(COMMANDS) in completed.stderr


def test_a_root_only_command_without_root_says_so(empty):
    completed = cli("cleanup", cwd=empty, unprivileged=True)
    assert completed.returncode == 4
    assert "docker-net-conformance cleanup: not root" in completed.stderr
    assert cli("cleanup", "--help", cwd=empty, unprivileged=True).returncode == 0, "its help needs no root"


def test_the_plugin_is_not_auto_loaded():
    assert not [e for e in entry_points(group="pytest11") if e.value.startswith("conformance")]


@pytest.fixture
def project(tmp_path) -> Path:
    """Another project in the same environment: its own pytest.ini and one test of its own."""
    directory = tmp_path / "project"
    directory.mkdir()
    (directory / "pytest.ini").write_text("[pytest]\n")
    (directory / "test_own.py").write_text("def test_own():\n    assert True\n")
    return directory


def pytest_in(project: Path, *args) -> subprocess.CompletedProcess:
    return run([str(BIN / "pytest"), *args], project)


def contents(project: Path) -> list[str]:
    """What is in *project*, but for pytest's own cache."""
    return sorted(p.name for p in project.iterdir() if p.name != ".pytest_cache")


def test_pytest_in_another_project_never_sees_the_suite(project):
    before = contents(project)
    helped = pytest_in(project, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "--report-dir" not in helped.stdout and "Docker networking conformance" not in helped.stdout
    ran = pytest_in(project)
    assert ran.returncode == 0 and "1 passed" in ran.stdout, ran.stdout + ran.stderr
    assert "conformance" not in ran.stdout + ran.stderr
    assert contents(project) == before, "the suite left something in another project"


def test_the_plugin_loaded_into_another_project_lists_its_group_and_does_nothing(project):
    before = contents(project)
    helped = pytest_in(project, "-p", "conformance.plugin", "--help")
    assert helped.returncode == 0, helped.stderr
    group = helped.stdout.split("\nDocker networking conformance:\n", 1)[1].split("\n\n", 1)[0]
    assert all(option.flag in group for option in OPTIONS)
    assert pytest_in(project, "-p", "conformance.plugin", "--collect-only", "-q").returncode == 0
    assert contents(project) == before, "--help or --collect-only made a report directory"


def test_the_checks_without_the_plugin_say_how_to_load_it(project):
    completed = pytest_in(project, CHECKS_DIR, "-k", "netns")
    assert completed.returncode == pytest.ExitCode.USAGE_ERROR
    assert "the checks need the suite's plugin: run docker-net-conformance, or give pytest -p conformance.plugin" \
        in completed.stderr
