"""The one shape of a lab: an engine, the probe image on it, the resolver its containers ask, its scopes.

The lab under test (under_test.Lab), the engine run with the options some claims are about
(configured.ConfiguredLab) and each host of the two-host lab (two_hosts.Host) have this shape, so a Scope, and
so every check, serves each alike.  They differ in how their engine starts (``_start_engine``) and where
their resolver listens (``_resolver``).  A private engine always starts from the build under test
(``dockerd``: --dockerd, else the one on PATH), as the run's fault when its target is this lab's (lab/faults/):
a Docker engine with daemon options, a Podman engine and a second host fit alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from enum import Enum
from typing import TYPE_CHECKING

from ..kernel.netns import Netns
from ..managed import Managed
from ..safety.identity import Run
from ..world.resolver import Resolver
from .engine import Engine
from .private import PrivateEngine
from .probe import ensure_probe_image
from .scope import Removals, Scope

if TYPE_CHECKING:  # the faults import this module (and two_hosts.py, which imports it): it names only their type
    from ..faults.fault import Fault
    from ..safety.guard import Guard


class Target(Enum):
    """What a fault (lab/faults/fault.py) changes; the run's fault leaves everything else healthy.

    The labs' engines (ENGINE, CONFIGURED) are changed as they start, the two-host lab (TWO_HOSTS) once it
    stands, and NAMESPACES is every namespace a check creates (conftest's ``namespaces``), for the claims that
    need no engine.  A new target (a kernel a check boots is the next) is a value here and the one place that
    applies the faults aimed at it.
    """

    ENGINE = "the engine under test"
    CONFIGURED = "the engine run with the options some claims are about (configured.py)"
    TWO_HOSTS = "the two-host lab (two_hosts.py)"
    NAMESPACES = "every namespace a check creates"


class EngineLab(Managed):
    """``engine``, ``image``, ``resolver``, ``run``, ``scope()``; ``guard`` and ``removals`` where the lab
    has them (the lab under test: it has uplinks to guard, and checks enough to remove in the background)."""

    target: Target | None = None  # the faults this lab's engine starts as: those with this target
    guard: Guard | None = None
    removals: Removals | None = None

    def __init__(self, run: Run, dockerd: str | None = None, fault: Fault | None = None):
        self.run = run
        self.dockerd = dockerd  # the build under test (--dockerd), else the dockerd on PATH
        self.fault = fault  # the run's fault (--variant), if any: its engine starts as it if aimed at this lab

    def _setup(self, stack: ExitStack) -> None:
        self.engine = self._start_engine(stack)
        self.image = ensure_probe_image(self.engine.client)
        self.resolver = stack.enter_context(self._resolver(stack))

    def _start_engine(self, stack: ExitStack) -> Engine:
        """This lab's engine, started (or connected to) with its undoing on *stack*."""
        raise NotImplementedError

    def _resolver(self, stack: ExitStack) -> Resolver:
        """The resolver its containers get with ``--dns``, not yet entered; what it needs first (the lab's
        upstream namespace) goes on *stack*."""
        raise NotImplementedError

    def _private(self, stack: ExitStack, name: str, options: Sequence[str] = (),
                 prepare: Callable[[Netns], None] | None = None) -> Engine:
        """A private engine of the build under test, stopped when *stack* closes: as the run's fault when its
        target is this lab, with *options* and *prepare* (run in its namespace before it starts) as well."""
        if self.fault is not None and self.fault.target is self.target:
            return self.fault.start(stack, self.run, name, tuple(options), prepare=prepare, dockerd=self.dockerd)
        return stack.enter_context(PrivateEngine(self.run, name, options, prepare=prepare,
                                                 dockerd=self.dockerd)).engine

    def scope(self) -> Scope:
        return Scope(self)
