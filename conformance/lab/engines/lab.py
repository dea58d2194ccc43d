"""The one shape of a lab: an engine, the probe image on it, the resolver its containers ask, its scopes.

The lab under test (under_test.Lab), the engine run with the options some claims are about
(configured.ConfiguredLab) and each host of the two-host lab (two_hosts.Host) have this shape, so a Scope, and
so every check, serves each alike.  They differ in how their engine starts (``_start_engine``) and where
their resolver listens (``_resolver``).  A private engine always starts from the build under test
(``dockerd``: --dockerd, else the one on PATH), as the run's fault when its target is this lab's (lab/faults/):
a Docker engine with daemon options, a Podman engine and a second host fit alike.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from contextlib import ExitStack, suppress
from enum import Enum
from typing import TYPE_CHECKING

import docker

from ..kernel.netns import Netns
from ..managed import Managed
from ..safety.identity import Run
from ..world.resolver import Resolver
from .engine import Engine, EngineUnavailable, answered
from .private import PrivateEngine
from .probe import ensure_probe_image
from .scope import Removals, Scope
from .watch import Watch

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


_canaries = itertools.count(1)


def runs_containers(engine: Engine, image: str, name: str, labels: dict[str, str]) -> None:
    """Whether *engine* can start a container at all: one of the probe image, with no network (so a fault in
    the engine's networking is left to the claims it breaks), created, started and removed.
    EngineUnavailable, with the engine's own words (a runtime's refusal, an rlimit it cannot set), if not."""
    container = None
    try:
        container = engine.client.containers.create(image, ["true"], name=name, labels=labels, init=True,
                                                    network_mode="none")
        container.start()
    except docker.errors.APIError as exc:
        said = " ".join(str(exc.explanation or exc).split())
        raise EngineUnavailable(f"{answered(engine.version)} at {engine.url} cannot start a container (one of "
                                f"the probe image, with no network, was refused): {said}") from None
    finally:
        if container is not None:
            with suppress(docker.errors.APIError):
                container.remove(force=True)


class EngineLab(Managed):
    """``engine``, ``image``, ``resolver``, ``run``, ``scope()``; ``guard`` and ``removals`` where the lab
    has them (the lab under test: it has uplinks to guard, and checks enough to remove in the background)."""

    target: Target | None = None  # the faults this lab's engine starts as: those with this target
    role = "a private engine of the suite's"  # how the line saying its engine stopped names it (watch.py)
    guard: Guard | None = None
    removals: Removals | None = None

    def __init__(self, run: Run, dockerd: str | None = None, fault: Fault | None = None):
        self.run = run
        self.dockerd = dockerd  # the build under test (--dockerd), else the dockerd on PATH
        self.fault = fault  # the run's fault (--variant), if any: its engine starts as it if aimed at this lab

    def _setup(self, stack: ExitStack) -> None:
        self.engine = self._start_engine(stack)
        self.watch = stack.enter_context(Watch(self.engine, self.role))
        self.image = ensure_probe_image(self.engine.client)
        runs_containers(self.engine, self.image, self.run.name(f"canary{next(_canaries)}"), self.run.labels)
        self.resolver = stack.enter_context(self._resolver(stack))

    def gone(self) -> str | None:
        """None while its engine runs; once it stopped under the run, the line that says so (watch.py)."""
        return self.watch.gone()

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
