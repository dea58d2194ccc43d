"""A new user's bad environments: each gives one line naming the problem and the fix, the checks it
affects error with that line, the others still run, and the report is written."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from conformance.plugin import preflight

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the scenarios are made by taking things away from root")

NOT_ROOT = "import os, runpy; os.geteuid = lambda: 1000; runpy.run_module('conformance', run_name='__main__')"


def path_without(tmp_path: Path, *missing: str) -> str:
    """A PATH with every tool of this machine's but *missing*."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        for tool in Path(directory).glob("*") if Path(directory).is_dir() else []:
            if tool.name not in missing and not (bin_dir / tool.name).exists():
                (bin_dir / tool.name).symlink_to(tool)
    return str(bin_dir)


def run(tmp_path: Path, *args: str, env: dict | None = None, prelude: list[str] | None = None):
    command = [sys.executable, *(prelude or ["-m", "conformance"]), "--report-dir", str(tmp_path / "r"), *args]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    return completed, report


def errored(report: dict) -> set[str]:
    return {c["message"] for c in report["claims"] if c["status"] == "error"}


@pytest.mark.parametrize("args, env, missing, line", [
    pytest.param(["-k", "defaults or netns/veth"], {"DOCKER_HOST": "unix:///nonexistent.sock"}, (), "not root: ",
                 id="not-root"),
    pytest.param(["-k", "defaults or netns/veth"], {"DOCKER_HOST": "unix:///nonexistent.sock"}, ("dockerd",),
                 "no Docker engine answers at unix:///nonexistent.sock, and there is no dockerd", id="no-engine"),
    pytest.param(["--engine", "system", "-k", "defaults or netns/veth"], {"DOCKER_HOST": "unix:///nonexistent.sock"},
                 (), "no Docker engine answers at unix:///nonexistent.sock — start it", id="system-engine-down"),
    # Nothing answers, so the one problem is iptables: a private engine would be started but for it.
    pytest.param(["-k", "defaults or netns/veth"], {"DOCKER_HOST": "unix:///nonexistent.sock"}, ("iptables",),
                 "no iptables on PATH", id="no-iptables"),
])
def test_bad_environment_is_one_line_and_a_report(tmp_path, args, env, missing, line):
    if missing:
        env = {**env, "PATH": path_without(tmp_path, *missing)}
    prelude = ["-c", NOT_ROOT] if line.startswith("not root") else None
    completed, report = run(tmp_path, *args, env=env, prelude=prelude)
    assert_one_line(completed, report, line)


def test_an_engine_that_answers_but_cannot_be_used_is_a_problem_never_replaced(tmp_path, unusable_engine):
    """--engine auto starts a private engine only when nothing answers: what answers and cannot be used is
    named, with the reason, and no substitute is tested in its place."""
    completed, report = run(tmp_path, "-k", "defaults or netns/veth", env={"DOCKER_HOST": unusable_engine})
    assert_one_line(completed, report, f"Unknown Engine 1.0 (API 1.41) answers at {unusable_engine}, but the suite "
                                       "cannot use it: its socket is served by ")
    assert "engine_private" not in report["run_info"] and "starting a private one" not in completed.stderr
    assert "pass --engine private" in report["run_info"]["problems"][0]


def assert_one_line(completed: subprocess.CompletedProcess, report: dict, line: str) -> None:
    """One problem, starting with *line*, in the summary and the report; the checks it takes away error with
    it; the namespace checks (none, when not root) still pass; exit status 1."""
    problems = report["run_info"]["problems"]
    assert len(problems) == 1 and problems[0].startswith(line), problems
    assert "Traceback" not in completed.stdout + completed.stderr
    assert problems[0] in completed.stdout.split("environment problems", 1)[1], "the line is not in the summary"
    assert errored(report) == {problems[0]}, "the affected checks did not error with the problem's line"
    ran = {c["topic"] for c in report["claims"] if c["status"] == "passed"}
    assert ran == (set() if line.startswith("not root") else {"netns"}), "the unaffected checks did not run"
    assert completed.returncode == 1


def test_engine_api_too_old(monkeypatch):
    old = SimpleNamespace(version={"ApiVersion": "1.38"}, client=SimpleNamespace(close=lambda: None))
    monkeypatch.setattr(preflight.Engine, "connect", classmethod(lambda cls, url: old))
    (problem,) = [p for p in preflight.environment("system") if p.affects == "engine"]
    assert "speaks API 1.38, older than 1.40" in str(problem) and "upgrade" in str(problem)


def test_socket_permission_denied(monkeypatch):
    def refuse(cls, url):
        raise preflight.EngineUnavailable(f"no Docker engine answers at {url}: ('Connection aborted.', "
                                          "PermissionError(13, 'Permission denied'))")
    monkeypatch.setattr(preflight.Engine, "connect", classmethod(refuse))
    (problem,) = [p for p in preflight.environment("auto") if p.affects == "engine"]
    assert str(problem).startswith("permission denied on ") and "docker group" in str(problem)


def test_a_docker_host_with_a_password_leaves_it_nowhere(tmp_path):
    """The problem line names the address it could not use, which lands in run_info.problems, every affected
    claim's message, JUnit and Allure: its userinfo is masked there and in every other file of the report."""
    completed, report = run(tmp_path, "-k", "defaults or netns/veth", env={"DOCKER_HOST": "tcp://user:s3cret@127.0.0.1:1"})
    assert_one_line(completed, report, "tcp://***@127.0.0.1:1: only unix sockets are supported")
    leaked = [str(p) for p in (tmp_path / "r").rglob("*") if p.is_file() and b"s3cret" in p.read_bytes()]
    assert not leaked and "s3cret" not in completed.stdout + completed.stderr, leaked
