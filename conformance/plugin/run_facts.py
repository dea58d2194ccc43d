"""The run's facts: what report.json's ``run_info`` says about one run, in one typed home.

The plugin makes one per pytest process (``run_facts(config)``); the checks' fixtures and the preflight record
into it through its methods, never by writing keys.  Under xdist every worker is a run of its own (its own id,
lab and cleanup): it sends its facts to the controller (``to_wire``), which merges them into the one report
(``run_info``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from ..lab.kernel.machine import host_info
from ..lab.tally import CREATED
from .expectations import Expectations
from .preflight import Problem


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class EgressGuard:
    """What the egress guards (the lab's, the two-host segment's) saw leave: report.json's ``egress_guard``."""

    uplinks: list[str] = field(default_factory=list)
    leaks: int = 0
    packets: list[str] = field(default_factory=list)
    pcaps: list[str] = field(default_factory=list)

    def add(self, other: EgressGuard) -> None:
        self.uplinks = sorted({*self.uplinks, *other.uplinks})
        self.leaks += other.leaks
        self.packets += other.packets
        self.pcaps += other.pcaps


@dataclass
class RunFacts:
    """One process's facts.  ``lab`` is the lab's (or, in the audit tier, the engine's) own description,
    whose keys (engine_version, bridge, upstream, ...) report.json carries at the top of ``run_info``."""

    start: str = field(default_factory=now)
    run_id: str | None = None
    lab: dict[str, Any] = field(default_factory=dict)
    two_hosts: dict[str, Any] | None = None
    problems: list[Problem] = field(default_factory=list)
    egress_guard: EgressGuard | None = None
    created: dict[str, int] = field(default_factory=dict)  # a worker's, as sent; this process's are in CREATED
    expectations: Expectations | None = None  # the controller's own (--expectations); workers send none

    def ran(self, run_id: str) -> None:
        """The run's id: every object it creates carries it."""
        self.run_id = run_id

    def described(self, description: Mapping[str, Any]) -> None:
        """The lab's or the engine's description (``Lab.run_info()``, ``Engine.describe()``)."""
        self.lab.update(description)

    def described_two_hosts(self, description: Mapping[str, Any]) -> None:
        self.two_hosts = dict(description)

    def found(self, problems: Iterable[Problem]) -> None:
        """Environment problems (conformance/plugin/preflight.py), each once."""
        self.problems += [p for p in problems if p not in self.problems]

    def guarded(self, found: Mapping[str, Any]) -> None:
        """One egress guard's findings (its ``describe()``, with ``pcaps`` where its leaks were written)."""
        if self.egress_guard is None:
            self.egress_guard = EgressGuard()
        self.egress_guard.add(EgressGuard(list(found["uplinks"]), found["leaks"], list(found["packets"]),
                                          list(found.get("pcaps", []))))

    def taking(self, what: str) -> Problem | None:
        """The first problem that takes away *what* (``engine``, ``namespaces``), if any."""
        return next((p for p in self.problems if p.affects in ("everything", what)), None)

    def to_wire(self) -> dict[str, Any]:
        """What a worker sends the controller (execnet carries only builtin types)."""
        sent = asdict(self)
        del sent["expectations"]
        return sent | {"created": dict(CREATED)}

    @classmethod
    def from_wire(cls, sent: Mapping[str, Any]) -> RunFacts:
        guard = sent["egress_guard"]
        return cls(start=sent["start"], run_id=sent["run_id"], lab=dict(sent["lab"]), two_hosts=sent["two_hosts"],
                   problems=[Problem(**p) for p in sent["problems"]], created=dict(sent["created"]),
                   egress_guard=EgressGuard(**guard) if guard is not None else None)

    def run_info(self, workers: Sequence[RunFacts] = (), **run: Any) -> dict[str, Any]:
        """report.json's ``run_info``: the host's, this process's facts merged with its *workers'* (the lab
        part of the first that has one: they share the engine; the ids, counts, problems and leaks of all),
        and *run*'s (pytest_args, tier)."""
        lab: dict[str, Any] = {}
        for worker in workers:
            for key, value in worker.lab.items():
                lab.setdefault(key, value)
        lab |= self.lab
        run_id = self.run_id or next((w.run_id for w in workers if w.run_id), None)
        two_hosts = self.two_hosts or next((w.two_hosts for w in workers if w.two_hosts), None)
        created = Counter(CREATED)
        problems = list(self.problems)
        guards = [g for g in [self.egress_guard, *(w.egress_guard for w in workers)] if g is not None]
        for worker in workers:
            created.update(worker.created)
            problems += [p for p in worker.problems if p not in problems]
        guard = None
        if guards:
            guard = EgressGuard()
            for found in guards:
                guard.add(found)
        ids = [w.run_id for w in workers if w.run_id] if workers else [run_id] if run_id else []
        return {**host_info(), "start": self.start, **({"run_id": run_id} if run_id else {}), **lab,
                **({"two_hosts": two_hosts} if two_hosts else {}),
                "run_ids": ids, "workers": len(workers), "created": dict(created),
                "problems": [str(p) for p in problems], "egress_guard": asdict(guard) if guard else None,
                "end": now(), **run, "expectations": self.expectations.path if self.expectations else None}


RUN_FACTS = pytest.StashKey[RunFacts]()


def run_facts(config: pytest.Config) -> RunFacts:
    """This process's facts: where the fixtures record what report.json's run_info says."""
    return config.stash[RUN_FACTS]
