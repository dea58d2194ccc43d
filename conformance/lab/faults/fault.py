"""The one model of a fault, and of an unusual but healthy configuration, which is made the same way."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engines.engine import Engine
from ..engines.lab import Target
from ..engines.private import PrivateEngine
from ..engines.two_hosts import TwoHosts
from ..kernel.netns import Netns
from ..safety.identity import Run
from .wrapper import RUNTIME, BundleEdit, runtime_script


@dataclass(frozen=True)
class Fault:
    """One named change to what a run tests (``--variant NAME``), aimed at *target*; the rest stays healthy.

    A fault of an engine (Target.ENGINE, Target.CONFIGURED) is in how its private engine starts: ``options``,
    ``tools``, ``before_start``, ``after_start``, ``in_container``, ``in_bundle``.  A fault of the two-host lab
    forms the swarm with ``swarm`` and runs ``on_two_hosts`` once the lab stands; a fault of every new
    namespace is ``on_namespace``.  A field of another target's is left at its default.

    ``expected`` (unusual healthy configurations only) names the claims this configuration rightly makes fail
    on the engines ``expected_when`` describes (same syntax as a claim's ``applies``), with the reason: the
    mutation run reports them as expected failures through an expectations file, never as passes, and
    reports them failed if they pass there (the expectation went stale) or fail elsewhere.
    """

    name: str
    why: str
    target: Target = Target.ENGINE
    options: tuple[str, ...] = ()
    tools: Callable[[], dict[str, str]] = dict  # name -> script, put first on the daemon's PATH
    before_start: Callable[[Netns], None] | None = None  # in the engine's namespace, before dockerd starts
    after_start: Callable[[Engine], None] | None = None
    in_container: str | None = None  # shell run in each new container's namespace before its process starts
    in_bundle: BundleEdit | None = None  # edits each container's OCI config before `runc create` (wrapper.py)
    swarm: Mapping[str, Any] = field(default_factory=dict)  # options of the two hosts' `swarm init`
    on_two_hosts: Callable[[TwoHosts], None] | None = None
    on_namespace: Callable[[Netns], None] | None = None  # as a distribution's hook or sysctl default would
    expected: Mapping[str, str] = field(default_factory=dict)  # claim id -> why it fails here
    expected_when: Mapping[str, str] = field(default_factory=dict)

    def start(self, stack: ExitStack, run: Run, name: str, options: tuple[str, ...] = (),
              prepare: Callable[[Netns], None] | None = None, dockerd: str | Path | None = None) -> Engine:
        """Start this fault's private engine (stopped when *stack* closes), with extra *options* and the
        lab's own *prepare* (run in its namespace before this fault's ``before_start``), from *dockerd*
        (a build of --dockerd) or the one on PATH."""
        def prepared(netns: Netns) -> None:
            for step in (prepare, self.before_start):
                if step is not None:
                    step(netns)

        private = PrivateEngine(run, name, self.options + tuple(options), prepare=prepared,
                                tools=self.tools(), dockerd=dockerd)
        if self.in_container is not None or self.in_bundle is not None:
            private.tools[RUNTIME] = runtime_script(self.in_container, str(private.netns.path), self.in_bundle,
                                                    private.state / "data")
            private.options += [f"--add-runtime={RUNTIME}={private.tooldir / RUNTIME}", f"--default-runtime={RUNTIME}"]
        engine = stack.enter_context(private).engine
        if self.after_start is not None:
            self.after_start(engine)
        return engine
