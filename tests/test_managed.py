"""The one cleanup idiom (conformance/lab/managed.py), without an engine: a scope undoes what it made also when a
later step fails, its removals run in the background and the lab's exit waits for them, lab objects entered
and exited in threads of their own are waited for, and a lock is held for exactly its block.

The engine is a fake client whose networks record their removal; the reservations' lock files are in a
temporary directory."""

from __future__ import annotations

import logging
import threading
from contextlib import ExitStack
from types import SimpleNamespace

import pytest

from conformance.lab.background import Background, Stopping
from conformance.lab.engines.scope import Removals, Scope
from conformance.lab.managed import Managed
from conformance.lab.safety import reserve
from conformance.lab.safety.identity import Run
from conformance.lab.safety.reserve import Lock


class FakeNetwork:
    """A network as Scope removes it; its removal waits for *allowed* (set unless a test holds it)."""

    def __init__(self, name: str, removed: list[str], allowed: threading.Event):
        self.name = name
        self._removed = removed
        self._allowed = allowed

    def remove(self) -> None:
        assert self._allowed.wait(timeout=10), "the removal was never allowed"
        self._removed.append(self.name)


class FakeLab:
    """The part of a lab a scope that only makes networks reads."""

    def __init__(self, removals: Removals | None = None):
        self.run = Run()
        self.removals = removals
        self.removed: list[str] = []
        self.allowed = threading.Event()
        self.allowed.set()
        self.engine = SimpleNamespace(client=SimpleNamespace(networks=SimpleNamespace(create=self._network)))

    def _network(self, name: str, **kwargs) -> FakeNetwork:
        return FakeNetwork(name, self.removed, self.allowed)

    def gone(self) -> str | None:
        """Its engine runs (a scope removes nothing of an engine that stopped under the run)."""
        return None


@pytest.fixture(autouse=True)
def reserved_here(tmp_path, monkeypatch):
    monkeypatch.setattr(reserve, "RESERVED_DIR", tmp_path / "reserved")
    return tmp_path / "reserved"


class HalfBuiltCheck(Managed):
    """A check set up in steps: a scope, a network in it and a port held in it, then a step that fails."""

    def __init__(self, lab: FakeLab):
        self.lab = lab

    def _setup(self, stack: ExitStack) -> None:
        self.scope = stack.enter_context(Scope(self.lab))  # type: ignore[arg-type]
        self.scope.network("net")
        self.scope.reservations.hold("port-test", 20001)
        raise RuntimeError("the last step fails")


def test_a_scope_undoes_what_it_made_when_a_later_step_raises(reserved_here):
    lab = FakeLab()
    check = HalfBuiltCheck(lab)
    with pytest.raises(RuntimeError, match="last step"), check:
        pass
    assert lab.removed == [lab.run.name(f"{check.scope.serial}net")], "the scope's network outlived the failure"
    assert not list(reserved_here.rglob("*.lock")), "the scope's reservation outlived the failure"
    check.__exit__(None, None, None)  # nothing left to undo: the network is not removed twice
    assert len(lab.removed) == 1


def test_a_scope_removes_in_the_background_and_the_removals_wait_for_it():
    with Removals() as removals:
        lab = FakeLab(removals)
        lab.allowed.clear()
        with Scope(lab) as scope:  # type: ignore[arg-type]
            scope.network("net")
        assert lab.removed == [], "the scope's exit waited for its removal"
        lab.allowed.set()
    assert len(lab.removed) == 1, "the removals' exit did not wait for the scope's removal"


def test_a_removal_that_fails_is_logged_not_raised(caplog):
    def fail() -> None:
        raise RuntimeError("the engine refused")

    with caplog.at_level(logging.WARNING, logger="conformance"), Removals() as removals:
        removals.submit(fail)
    assert "the engine refused" in caplog.text


class Recorded(Managed):
    """A lab object whose setup and undoing record themselves, the undoing waiting for *released*."""

    def __init__(self, fails: bool = False):
        self.fails = fails
        self.events: list[str] = []
        self.released = threading.Event()
        self.released.set()

    def _setup(self, stack: ExitStack) -> None:
        self.events.append(f"entered in {threading.current_thread().name}")
        stack.callback(self._undo)
        if self.fails:
            raise RuntimeError("entering fails")

    def _undo(self) -> None:
        assert self.released.wait(timeout=10), "never released"
        self.events.append(f"exited in {threading.current_thread().name}")


def test_a_background_stop_runs_in_its_own_thread_and_is_waited_for():
    then = threading.Event()
    with Recorded() as lab_object, Stopping() as stopping:
        lab_object.released.clear()
        stopping.later(lab_object, then.set)
        assert not then.is_set(), "later() waited for the stop"
        lab_object.released.set()
    assert lab_object.events == ["entered in MainThread", "exited in stop Recorded"]
    assert then.is_set(), "leaving Stopping did not wait for the stop and what follows it"
    lab_object.__exit__(None, None, None)  # exited once only
    assert len(lab_object.events) == 2


def test_a_background_stop_that_fails_is_logged_not_raised(caplog):
    def fail() -> None:
        raise RuntimeError("the engine would not stop")

    with caplog.at_level(logging.ERROR, logger="conformance"), Recorded() as lab_object, Stopping() as stopping:
        stopping.later(lab_object, fail)
    assert "stopping in the background failed" in caplog.text and "would not stop" in caplog.text


def test_a_background_start_is_handed_over_entered_and_one_nobody_took_is_exited():
    taken, untaken = Recorded(), Recorded()
    with Background(taken) as started, Background(untaken):
        assert started.take() is taken
        assert taken.events == ["entered in enter Recorded"]
    assert taken.events == ["entered in enter Recorded"], "a lab object handed over was exited by its Background"
    assert untaken.events == ["entered in enter Recorded", "exited in MainThread"]
    taken.__exit__(None, None, None)
    assert taken.events[-1] == "exited in MainThread"


def test_a_background_start_that_fails_raises_at_take_having_undone_itself():
    failing = Recorded(fails=True)
    with Background(failing) as started, pytest.raises(RuntimeError, match="entering fails"):
        started.take()
    assert failing.events == ["entered in enter Recorded", "exited in enter Recorded"]


def test_a_lock_is_held_for_exactly_its_block(tmp_path):
    path = tmp_path / "run.lock"
    with Lock(path):
        assert not Lock(path).acquire(blocking=False), "another could take a lock that is held"
    probe = Lock(path)
    assert probe.acquire(blocking=False), "the lock outlived its block"
    probe.release()
    assert not path.exists()
