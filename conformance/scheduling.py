"""How ``-n N`` hands the checks to xdist's workers: whole modules, longest first, small checks last.

A check module goes whole to one worker, which builds the module's shared topology (conftest.py's
``shared``, a module's own fixtures, test_configured.py's second engine) once.  The units go out longest
first (the classic longest-processing-time rule), so the last unit to start is a short one and both
workers finish close together; the checks that need no engine at all (raw namespaces) share nothing, so
each is a unit of its own and they fill whichever worker frees up first at the end.

The controller does not collect, so what each check needs is read from its module's source: the
arguments of its function (a check that takes only ENGINE_FREE needs no engine), and the cost of a unit
is estimated from them.  A wrong estimate only orders the work less well; it never changes an outcome.
(xdist's own loadgroup does not work with pytest 9.)

It also says what a process starts in the background as its run begins (checks/conftest.py starts it):
the second engine on the worker that gets its module second, and, in a serial run, which begins with
the checks that need no engine, the lab.
"""

from __future__ import annotations

import ast
from collections import OrderedDict
from functools import cache
from pathlib import Path

from xdist.scheduler import LoadScopeScheduling

# The worker that gets the module of the second engine as its second unit, and so starts that engine in
# the background during its first (second_engine_early).
EARLY_WORKER = "gw0"
# The fixtures a check may take and still need no engine (the namespace claims take these).
ENGINE_FREE = frozenset({"claim", "namespaces", "evidence", "run"})
SECOND_ENGINE = frozenset({"configured", "configured_scope"})
# Seconds each costs on the 2-core development machine, from the benchmark's timelines: a check that needs
# the engine starts a container or two and waits on it; one that needs none builds namespaces; a second
# private engine takes a few seconds to start and to stop.
COST = {"engine check": 1.2, "namespace check": 0.4, "second engine": 5.0}


@cache
def check_arguments(path: Path) -> dict[str, frozenset[str]]:
    """The argument names of each check function in the module at *path*."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return {}
    return {node.name: frozenset(a.arg for a in node.args.args) for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def needs_engine(item) -> bool:
    """Whether a collected check needs an engine (the lab's or the second one), from its fixture closure."""
    return bool({"lab", "engine", *SECOND_ENGINE} & set(getattr(item, "fixturenames", ())))


def engine_free_first(items: list) -> None:
    """Order a run's checks so that those needing no engine come first (stably: modules stay together):
    run serially, the lab's start overlaps them (lab_early)."""
    items.sort(key=needs_engine)


def lab_early(config, items) -> bool:
    """Whether this process starts its lab as its run begins, in the background: in a serial run whose
    first checks need no engine and later ones the lab (an xdist worker's first unit needs the lab)."""
    return (not hasattr(config, "workerinput") and bool(items) and not needs_engine(items[0])
            and any("lab" in item.fixturenames for item in items))


def second_engine_early(config, items) -> bool:
    """Whether this process starts the second engine (test_configured.py's) as its run begins, in the
    background: serially, when a check needs it; under xdist, on EARLY_WORKER, which the scheduler gives
    that module right after its first, so the engine and its probe image are ready when it gets there."""
    if not any(SECOND_ENGINE & set(item.fixturenames) for item in items):
        return False
    worker = getattr(config, "workerinput", None)
    return worker is None or worker.get("workerid") == EARLY_WORKER


class ChecksScheduling(LoadScopeScheduling):
    """xdist's scope scheduling with the units and the order described above."""

    def __init__(self, config, log=None):
        super().__init__(config, log)
        self.workqueue: OrderedDict[str, dict[str, bool]]  # xdist's: scope -> {nodeid: completed}
        self._ordered = self._pinned = False

    def _arguments(self, nodeid: str) -> frozenset[str] | None:
        """The check's arguments, or None when its source does not say (then it is treated as needing all)."""
        path, _, name = nodeid.partition("::")
        return check_arguments(self.config.rootpath / path).get(name.split("[", 1)[0])

    def _engine_free(self, nodeid: str) -> bool:
        arguments = self._arguments(nodeid)
        return arguments is not None and arguments <= ENGINE_FREE

    def _split_scope(self, nodeid: str) -> str:
        return nodeid if self._engine_free(nodeid) else nodeid.split("::", 1)[0]

    def _second_engine(self, unit: dict[str, bool]) -> bool:
        return any((self._arguments(nodeid) or frozenset()) & SECOND_ENGINE for nodeid in unit)

    def _cost(self, unit: dict[str, bool]) -> float:
        checks = sum(COST["namespace check"] if self._engine_free(n) else COST["engine check"] for n in unit)
        return checks + (COST["second engine"] if self._second_engine(unit) else 0.0)

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
            self._ordered = True
        super()._assign_work_unit(node)
        if node.gateway.id == EARLY_WORKER and not self._pinned:
            self._pinned = True
            early = next((scope for scope, unit in self.workqueue.items() if self._second_engine(unit)), None)
            if early is not None:
                self.workqueue.move_to_end(early, last=False)
                super()._assign_work_unit(node)
