"""What each fixture a check may take needs: no engine, the engine under test, or an engine of its own; and
whether it creates anything.  One table, read by the run's order and -n N's scheduler
(conformance/plugin/scheduling.py), by ``list`` (which claims need an engine) and by the audit tier's rule
(conformance/plugin/binding.py: an audit-tier check creates nothing), so the three cannot disagree.

The fixtures are conformance/checks/conftest.py's and the plugin's own (``claim``, ``evidence``), named here as
data: the plugin imports nothing from the checks (tests/test_scheduling.py holds the table to conftest.py's
fixtures).  A module's own fixtures are not in it: their dependencies, which are, are in a check's closure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum


class Reach(IntEnum):
    """What a fixture needs to reach, in the order of the time it takes to stand up (serially, a run's checks
    come in this order, so that what takes longest has the longest to start in the background)."""

    KERNEL = 0  # no engine: namespaces, the run's identity, files in the report directory
    ENGINE = 1  # the engine under test (the lab's, or the one at DOCKER_HOST in the audit tier)
    SECOND_ENGINE = 2  # besides it, an engine of its own: the private one test_configured.py's claims are about
    TWO_HOSTS = 3  # besides it, the two-host lab: two private engines in a swarm (test_hosts.py)


@dataclass(frozen=True)
class Need:
    reach: Reach
    creates: bool  # namespaces, containers, engines, the run's lock: what the audit tier must not make


FIXTURES: dict[str, Need] = {
    "claim": Need(Reach.KERNEL, creates=False),
    "evidence": Need(Reach.KERNEL, creates=False),
    # Autouse, so in every check's closure: by itself it needs nothing (it refreshes what shared or standing made).
    "_long_lived_as_if_fresh": Need(Reach.KERNEL, creates=False),
    # Autouse too: it records the engine a check ran on, and errors a check whose engine stopped under the run.
    "_engine_ran_on": Need(Reach.KERNEL, creates=False),
    "run": Need(Reach.KERNEL, creates=True),
    "namespaces": Need(Reach.KERNEL, creates=True),
    "engine": Need(Reach.ENGINE, creates=False),  # in the audit tier, only connected to
    "lab": Need(Reach.ENGINE, creates=True),
    "scope": Need(Reach.ENGINE, creates=True),
    "shared": Need(Reach.ENGINE, creates=True),
    "standing": Need(Reach.ENGINE, creates=True),
    "configured": Need(Reach.SECOND_ENGINE, creates=True),
    "configured_scope": Need(Reach.SECOND_ENGINE, creates=True),
    "hosts": Need(Reach.TWO_HOSTS, creates=True),
}


def reaches(fixtures: Iterable[str]) -> set[Reach]:
    """What the table's fixtures among *fixtures* need.  For a check's closure (pytest's ``fixturenames``), a
    name the table does not know needs nothing of its own: what it depends on is in the closure too."""
    return {FIXTURES[name].reach for name in fixtures if name in FIXTURES}


def needs_engine(fixtures: Iterable[str]) -> bool:
    """Whether a check with the fixture closure *fixtures* needs any engine."""
    return max(reaches(fixtures), default=Reach.KERNEL) > Reach.KERNEL


def engine_free(arguments: Iterable[str]) -> bool:
    """Whether a check whose function takes *arguments* (read from its source, not its closure) needs no
    engine: each is a fixture of the table that needs none.  A name it does not know (a module's own fixture)
    may depend on anything."""
    return all(name in FIXTURES and FIXTURES[name].reach is Reach.KERNEL for name in arguments)


def creating(fixtures: Iterable[str]) -> list[str]:
    """The fixtures among *fixtures* that create something, in the table's order."""
    names = set(fixtures)
    return [name for name, need in FIXTURES.items() if need.creates and name in names]
