"""The two-host lab leaves nothing behind: killed with its swarm up, it is swept by `cleanup` by its run id."""

import signal
import subprocess
import sys
import time

from conformance.commands.runner import start
from conformance.lab.safety.identity import PREFIX, STATE_DIR
from conformance.lab.safety.sweep import dead_runs, leftovers, run_of
from conformance.lab.wait import wait_for


def _swarm_up(pid: int) -> str | None:
    """The id of the run of process *pid* once its host B has joined the swarm (its swarm state is on disk)."""
    run_id = run_of(pid)
    if run_id is not None and (STATE_DIR / f"{PREFIX}{run_id}-hostb" / "data" / "swarm" / "docker-state.json").exists():
        return run_id
    return None


def test_sigkill_with_the_swarm_up_leaves_nothing_after_cleanup(tmp_path):
    victim = start(tmp_path / "killed", "-k", "overlay_reaches")
    try:
        run_id = wait_for(lambda: _swarm_up(victim.process.pid), "a run's two hosts to form their swarm", timeout=120)
        time.sleep(1)  # containers starting on the overlay
    finally:
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait()
    wait_for(lambda: run_id in dead_runs(), f"run {run_id}'s lock to be released", timeout=15)
    cleanup = subprocess.run([sys.executable, "-m", "conformance", "cleanup"], capture_output=True, text=True,
                             timeout=120)
    assert cleanup.returncode == 0, f"cleanup exited {cleanup.returncode}:\n{cleanup.stdout}{cleanup.stderr}"
    swept = cleanup.stdout
    if f"run {run_id} (dead)" in swept:  # else another run, starting meanwhile, swept it first
        for name in ("hosta", "hostb", "seg"):
            assert f"namespace {PREFIX}{run_id}-{name}" in swept, swept
    assert leftovers(run_id) == []
