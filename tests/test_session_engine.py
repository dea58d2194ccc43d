"""The self-tests' system engine (tests/session_engine.py), tried where it can harm nothing: a dockerd with
its own socket, data-root, exec-root and pidfile in a throwaway network namespace stands in for the plain
dockerd a fresh machine gets at the default socket (the machine's own engine is never stopped to try it)."""

import os
import subprocess
from contextlib import ExitStack
from pathlib import Path

import pytest
from session_engine import session_engine

from conformance.lab.engines.engine import Engine, EngineUnavailable, NoEngine
from conformance.lab.engines.private import PrivateEngine
from conformance.lab.safety.identity import Run
from conformance.lab.safety.sweep import Liveness

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create namespaces and start dockerd"),
]


@pytest.fixture
def instance():
    """Where nothing answers yet: the socket and the dockerd command line of a private test instance."""
    run = Run()
    engine = PrivateEngine(run, "sys")
    with Liveness(run), ExitStack() as stack:  # a run killed here is swept by the next one, dockerd included
        stack.enter_context(engine.netns)
        stack.callback(engine.remove_state)
        engine.state.mkdir(parents=True)
        engine.rundir.mkdir(parents=True)
        yield engine


def test_nothing_answers_so_dockerd_runs_for_the_block_and_stops_after(instance):
    with session_engine(instance.url, instance.command(), instance.log) as started:
        assert started is not None and started.poll() is None
        engine = Engine.connect(instance.url)
        assert engine.pid == started.pid and engine.netns.inode == instance.netns.inode
        engine.client.close()
    assert started.returncode is not None, "the dockerd it started is still running"
    with pytest.raises(NoEngine):
        Engine.connect(instance.url)


def test_an_engine_that_answers_is_used_and_left_as_it_was(instance):
    with session_engine(instance.url, instance.command(), instance.log) as first:
        with session_engine(instance.url, ["false"], Path(instance.log)) as second:
            assert second is None, "it started an engine where one answered"
        assert first.poll() is None and Engine.connect(instance.url).pid == first.pid, "it stopped what it found"


def test_what_answers_but_cannot_be_used_is_an_error_and_nothing_starts(unusable_engine, tmp_path):
    marker = tmp_path / "started"
    with pytest.raises(EngineUnavailable, match=r"Unknown Engine 1\.0 .* cannot use it") as raised, \
            session_engine(unusable_engine, ["touch", str(marker)], tmp_path / "log"):
        pass
    assert not isinstance(raised.value, NoEngine) and not marker.exists()


def test_nothing_answers_and_nothing_may_start(tmp_path):
    with pytest.raises(NoEngine), session_engine(f"unix://{tmp_path}/none.sock", None, tmp_path / "log"):
        pass


def test_a_dockerd_that_cannot_start_is_named_with_its_log(instance):
    argv = [*instance.command(), "--no-such-option"]
    with pytest.raises(EngineUnavailable, match=r"(?s)exited \(\d+\).*unknown flag: --no-such-option"), \
            session_engine(instance.url, argv, instance.log):
        pass
    assert not subprocess.run(["pgrep", "-f", str(instance.rundir)], capture_output=True).stdout
