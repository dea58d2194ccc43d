"""Crash-safe cleanup: a run killed at any point leaves nothing once swept; a live run is never swept."""

import os
import shutil
import signal
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest

from conformance.commands.runner import EngineOptions, run_suite, start
from conformance.lab.kernel.netns import NamedNetns
from conformance.lab.managed import Managed
from conformance.lab.safety.identity import PREFIX, STATE_DIR, Run
from conformance.lab.safety.sweep import RUNS_DIR, Liveness, dead_runs, leftovers, run_of
from conformance.lab.wait import wait_for

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create namespaces"),
    pytest.mark.skipif(shutil.which("dockerd") is None, reason="needs dockerd (apt-get install docker.io)"),
]


class _HalfBuilt(Managed):
    """A lab object whose second step fails, after its first made a namespace."""

    def __init__(self, run: Run):
        self.netns = NamedNetns(run.name("half"))

    def _setup(self, stack: ExitStack) -> None:
        stack.enter_context(self.netns)
        raise RuntimeError("the second step fails")


def test_a_lab_object_whose_setup_fails_undoes_what_it_had_set_up():
    run = Run()
    half = _HalfBuilt(run)
    with pytest.raises(RuntimeError, match="second step"), half:
        pass
    assert not Path(half.netns.path).exists(), "the namespace of the first step outlived the failed setup"
    half.__exit__(None, None, None)  # nothing left to undo, and no error


def test_a_live_run_is_not_dead():
    run = Run()
    with Liveness(run):
        assert run.id not in dead_runs()
    assert not (RUNS_DIR / f"{run.id}.lock").exists()


def wait_for_point(point: str, pid: int, timeout: float = 90) -> str:
    """Wait until the run of process *pid* reaches *point*; its id.  Other runs on the machine (other
    engineers', CI jobs) start and end meanwhile: only the victim's is this test's."""
    def reached() -> str | None:
        run_id = run_of(pid)
        if run_id is None:
            return None
        prefix = f"{PREFIX}{run_id}"
        return run_id if {
            "started": True,
            "engine up": Path(f"/run/netns/{prefix}-up").exists(),
            "containers running": any((STATE_DIR / f"{prefix}-eng" / "data" / "containers").glob("*")),
        }[point] else None

    return wait_for(reached, f"the victim's run to reach {point!r}", timeout=timeout, interval=0.05)


@pytest.mark.parametrize("point, sweeper", [
    ("started", "cleanup"),
    ("engine up", "next run"),
    ("containers running", "cleanup"),
])
def test_sigkill_at_any_point_leaves_nothing_after_the_sweep(tmp_path, point, sweeper):
    victim = start(tmp_path / "killed", "-k", "masquerade_source or four_modes", engine=EngineOptions("private"))
    try:
        run_id = wait_for_point(point, victim.process.pid)
    finally:
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait()
    # A helper the victim had just forked (pyroute2 enters namespaces that way) may hold the lock a moment longer.
    wait_for(lambda: run_id in dead_runs(), f"run {run_id}'s lock to be released", timeout=15)
    if sweeper == "cleanup":
        swept = subprocess.run([sys.executable, "-m", "conformance", "cleanup"], capture_output=True, text=True,
                               timeout=120, check=True).stdout
        # Another run starting meanwhile (every run sweeps the dead first) may have swept it already.
        assert f"run {run_id} (dead)" in swept or not (RUNS_DIR / f"{run_id}.lock").exists(), swept
    else:
        following = run_suite(tmp_path / "next", "-k", "named_appears", timeout=120)
        assert following.exit == 0, following.tail()
    assert leftovers(run_id) == []
