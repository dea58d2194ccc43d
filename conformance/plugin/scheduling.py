"""How a run orders its checks, how ``-n N`` hands them to xdist's workers, and what a process starts in
the background as its run begins (checks/conftest.py starts it).

A check needs one of three things, and nothing more: no engine (the raw-namespace checks), the lab (the
engine under test), or, besides the lab, an engine of its own that takes seconds to start and to stop: the
second engine (test_configured.py) or the two-host lab (test_hosts.py).  Which it is comes from the fixtures
it takes, by conformance/plugin/needs.py's table.

Serially, the engine-free checks come first, while the lab (and a private engine, if it needs one) and the
two-host lab start in the background; the two-host checks come last, so that lab has the longest to stand up.

Under xdist, a check module goes whole to one worker, which builds the module's shared topology (conftest.py's
``shared``, a module's own fixtures, the second engine, the two-host lab) once.  The units go out longest
first (the classic longest-processing-time rule), so the last unit to start is a short one and both workers
finish close together; the engine-free checks share nothing, so each is a unit of its own, and they fill
whichever worker frees up first at the end.  EARLY_WORKER begins differently, so that the engines that take
longest to start do so in the background while it has other work: first engine-free checks worth about
EARLY_FILL seconds (its lab, the second engine and the two-host lab start meanwhile), then the two-host
module, then the second engine's.

The controller does not collect, so what each check needs is read from its module's source: the arguments
of its function, and the cost of a unit is estimated from them.  A wrong estimate only orders the work less
well; it never changes an outcome.  (xdist's own loadgroup does not work with pytest 9.)
"""

from __future__ import annotations

import ast
from collections import OrderedDict
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from xdist.scheduler import LoadScopeScheduling

from .needs import Reach, engine_free, needs_engine, reaches

# The worker that begins with engine-free checks while the slow engines start in the background, then gets
# the modules that need them (two_hosts_early, second_engine_early, lab_early).
EARLY_WORKER = "gw0"
# Seconds each costs on the 2-core development machine, from the benchmark's timelines: a check that needs
# the engine starts a container or two and waits on it; one that needs none builds namespaces; a second
# private engine takes a few seconds to start and to stop; the two-host lab, two engines and a swarm, more.
COST = {"engine check": 1.2, "namespace check": 0.4, "second engine": 5.0, "two hosts": 10.0}
# Seconds of engine-free checks EARLY_WORKER runs first: about what the two-host lab takes to stand up.
EARLY_FILL = 6.0


@cache
def check_arguments(path: Path) -> dict[str, frozenset[str]]:
    """The argument names of each check function in the module at *path*."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return {}
    return {node.name: frozenset(a.arg for a in node.args.args) for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def _closure(item: Any) -> Iterable[str]:
    return getattr(item, "fixturenames", ())


def _uses(item: Any, reach: Reach) -> bool:
    return reach in reaches(_closure(item))


def engine_free_first(items: list[Any]) -> None:
    """Order a run's checks (stably: modules stay together) by the farthest Reach of their fixtures: those
    needing no engine first, while the lab starts (lab_early); those needing an engine of their own last, the
    two-host checks the very last, so the engines started in the background as the run began have the longest
    to start."""
    items.sort(key=lambda item: max(reaches(_closure(item)), default=Reach.KERNEL))


def _is_early(config: Any) -> bool:
    """Serial, or the early worker of an xdist run."""
    worker = getattr(config, "workerinput", None)
    return worker is None or worker.get("workerid") == EARLY_WORKER


def lab_early(config: Any, items: list[Any]) -> bool:
    """Whether this process starts its lab as its run begins, in the background: where its first checks
    need no engine and later ones the lab: a serial run (engine_free_first), and EARLY_WORKER when the
    scheduler gives it engine-free checks first (a two-host module to run)."""
    if not any(needs_engine(_closure(item)) for item in items):
        return False
    if not hasattr(config, "workerinput"):
        return not needs_engine(_closure(items[0]))
    return _is_early(config) and any(_uses(item, Reach.TWO_HOSTS) for item in items) \
        and not all(needs_engine(_closure(item)) for item in items)


def second_engine_early(config: Any, items: list[Any]) -> bool:
    """Whether this process starts the second engine (test_configured.py's) as its run begins, in the
    background: serially, when a check needs it; under xdist, on EARLY_WORKER, to which the scheduler gives
    that module early, so the engine and its probe image are ready when it gets there."""
    return _is_early(config) and any(_uses(item, Reach.SECOND_ENGINE) for item in items)


def two_hosts_early(config: Any, items: list[Any]) -> bool:
    """Whether this process starts the two-host lab as its run begins, in the background: serially, when a
    check needs it; under xdist, on EARLY_WORKER, to which the scheduler gives the two-host module after
    its engine-free checks."""
    return _is_early(config) and any(_uses(item, Reach.TWO_HOSTS) for item in items)


class ChecksScheduling(LoadScopeScheduling):
    """xdist's scope scheduling with the units and the order described above."""

    workqueue: OrderedDict[str, dict[str, bool]]  # xdist's: {scope: {nodeid: done}}, the units not yet given out

    def __init__(self, config, log=None):
        super().__init__(config, log)
        self._ordered = self._pinned = False
        self._early: list[str] = []  # EARLY_WORKER's first units, held for it until it asks

    def _arguments(self, nodeid: str) -> frozenset[str] | None:
        """The check's arguments, or None when its source does not say (then it is treated as needing all)."""
        path, _, name = nodeid.partition("::")
        return check_arguments(self.config.rootpath / path).get(name.split("[", 1)[0])

    def _engine_free(self, nodeid: str) -> bool:
        arguments = self._arguments(nodeid)
        return arguments is not None and engine_free(arguments)

    def _split_scope(self, nodeid: str) -> str:
        return nodeid if self._engine_free(nodeid) else nodeid.split("::", 1)[0]

    def _takes(self, unit: dict[str, bool], reach: Reach) -> bool:
        return any(reach in reaches(self._arguments(nodeid) or ()) for nodeid in unit)

    def _second_engine(self, unit: dict[str, bool]) -> bool:
        return self._takes(unit, Reach.SECOND_ENGINE)

    def _two_hosts(self, unit: dict[str, bool]) -> bool:
        return self._takes(unit, Reach.TWO_HOSTS)

    def _cost(self, unit: dict[str, bool]) -> float:
        checks = sum(COST["namespace check"] if self._engine_free(n) else COST["engine check"] for n in unit)
        return (checks + (COST["second engine"] if self._second_engine(unit) else 0.0)
                + (COST["two hosts"] if self._two_hosts(unit) else 0.0))

    def _early_units(self) -> list[str]:
        """EARLY_WORKER's first units, in order: with a two-host module to run, engine-free checks worth
        EARLY_FILL, then that module; then the second engine's module; else the longest unit first."""
        queue = self.workqueue
        hosts = next((scope for scope, unit in queue.items() if self._two_hosts(unit)), None)
        second = next((scope for scope, unit in queue.items() if self._second_engine(unit)), None)
        first: list[str] = []
        if hosts is not None:
            filled = 0.0
            for scope, unit in reversed(queue.items()):  # the engine-free units are at the end
                if filled >= EARLY_FILL or not all(self._engine_free(n) for n in unit):
                    break
                first.append(scope)
                filled += self._cost(unit)
            first.append(hosts)
        else:
            first.append(next(iter(queue)))
        if second is not None and second not in first:
            first.append(second)
        return first

    def _reschedule(self, node) -> None:
        """As xdist's, but a worker is given its next unit only when it is on its last check (xdist: on its
        last three): at the end, the small units go to whichever worker is free, not behind a busy one."""
        if node.shutting_down:
            return
        if not self.workqueue:
            node.shutdown()
            return
        if self._pending_of(self.assigned_work[node]) <= 1:
            self._assign_work_unit(node)

    def _assign_work_unit(self, node) -> None:
        if not self._ordered:  # the first assignment: the queue is complete, so order it once
            self.workqueue = OrderedDict(sorted(self.workqueue.items(), key=lambda kv: -self._cost(kv[1])))
            self._early = self._early_units()
            self._ordered = True
        if node.gateway.id == EARLY_WORKER and not self._pinned:
            self._pinned = True
            for scope in reversed(self._early):
                self.workqueue.move_to_end(scope, last=False)
            for _ in self._early:
                super()._assign_work_unit(node)
            return
        if not self._pinned:  # another worker asks first: it gets the longest unit not held for EARLY_WORKER
            other = next((scope for scope in self.workqueue if scope not in self._early), None)
            if other is not None:
                self.workqueue.move_to_end(other, last=False)
        super()._assign_work_unit(node)
