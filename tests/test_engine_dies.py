"""An engine that stops under a run, and one that cannot start a container: each is one problem line, every claim
it takes away errors with that line and none fails, and nothing of the run is left, after it nor after `cleanup`."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from conformance.commands.runner import EngineOptions, start
from conformance.lab.safety.sweep import leftovers

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the suite runs as root")

CHECKS = "bridge or ports or none or netns or defaults"
KILL_AFTER_S = 10


def _dockerd_of(process: subprocess.Popen, timeout: float = 180) -> psutil.Process:
    """The private dockerd the run *process* started (its own child: other runs may have theirs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process(process.pid).children(recursive=True):
            try:
                if child.name() == "dockerd" and any(a.endswith("-eng/docker.sock") for a in child.cmdline()):
                    return child
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.2)
    raise AssertionError("the run started no private engine")


def _cleanup() -> str:
    return subprocess.run([sys.executable, "-m", "conformance", "cleanup"], capture_output=True, text=True,
                          timeout=300, check=True).stdout


def _assert_one_line(report: dict, words: list[str]) -> str:
    problems = report["run_info"]["problems"]
    assert len(problems) == 1, problems
    (line,) = problems
    for word in words:
        assert word in line, line
    failed = [(c["id"], c["message"]) for c in report["claims"] if c["status"] in ("failed", "xpassed")]
    assert not failed, failed
    errored = [c for c in report["claims"] if c["status"] == "error"]
    assert errored, "no claim was taken away"
    assert all(c["message"] == line for c in errored), [c["message"] for c in errored if c["message"] != line]
    assert not any("already in use" in c["message"] for c in report["claims"])
    return line


def _assert_nothing_left(run_id: str) -> None:
    assert leftovers(run_id) == [], leftovers(run_id)
    marker = f"/docker-net-conformance/cf{run_id}-"
    assert not [p.pid for p in psutil.process_iter(["cmdline"]) if any(marker in a for a in p.info["cmdline"] or [])]


def test_engine_killed_mid_run_is_one_line_and_nothing_left(tmp_path):
    running = start(tmp_path / "r", "-k", CHECKS, engine=EngineOptions(engine="private"))
    try:
        dockerd = _dockerd_of(running.process)
        time.sleep(KILL_AFTER_S)
        dockerd.send_signal(signal.SIGKILL)
    finally:
        finished = running.wait()
    report = finished.required()
    assert finished.exit == 1, finished.tail()
    line = _assert_one_line(report, ["the engine under test", "stopped at", f"pid {dockerd.pid}",
                                     "the last lines of its log"])
    assert any(c["status"] == "passed" and c["engine"] for c in report["claims"]), "the engine died before any check"
    run_id = report["run_info"]["run_id"]
    _assert_nothing_left(run_id)
    assert f"run {run_id}" not in _cleanup(), "the run left something for cleanup"
    _assert_nothing_left(run_id)
    assert line


# A runtime that refuses every container, telling its engine why as runc does: in the log it is given (--log).
REFUSING = f"""#!{sys.executable}
import json, sys
args, said = sys.argv[1:], "cf-refuse: this runtime starts no container (a self-test)"
if "--log" in args:
    with open(args[args.index("--log") + 1], "a") as log:
        log.write(json.dumps({{"level": "error", "msg": said}}) + "\\n")
sys.exit(said)
"""


def test_engine_that_cannot_start_a_container_is_one_line(tmp_path):
    runtime = tmp_path / "cf-refuse"
    runtime.write_text(REFUSING)
    runtime.chmod(0o755)
    options = EngineOptions(engine="private", daemon_opts=(f"--add-runtime=cf-refuse={runtime}",
                                                          "--default-runtime=cf-refuse"))
    finished = start(tmp_path / "r", "-k", "none or defaults or netns/veth", engine=options).wait()
    report = finished.required()
    assert finished.exit == 1, finished.tail()
    _assert_one_line(report, ["cannot start a container", "cf-refuse: this runtime starts no container"])
    assert any(c["status"] == "passed" for c in report["claims"]), "the engine-free checks ran"
    _assert_nothing_left(report["run_info"]["run_id"])
