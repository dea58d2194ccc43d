"""One run's lab: the engine, the probe image, the upstream namespace and its resolver."""

from __future__ import annotations

import logging
import socket
from contextlib import ExitStack
from typing import Any

from ..faults.fault import Fault
from ..kernel.subnets import free_subnet
from ..safety.guard import Guard
from ..safety.identity import Run
from ..safety.reserve import Reservations, from_random_start
from ..safety.sweep import remove_labelled
from ..world.resolver import PROBE_NAME, Resolver
from ..world.upstream import Upstream
from .engine import Engine, NoEngine, docker_host
from .lab import EngineLab, Target
from .private import PodmanService
from .scope import Removals

log = logging.getLogger("conformance")

ENGINE_MODES = ("auto", "system", "private", "podman")
# Ports the suite chooses come from below the ephemeral range, where neither -P nor outgoing connections take theirs.
PORT_FLOOR = 20000


class Lab(EngineLab):
    """``with Lab() as lab:`` — the engine under test, its upstream and resolver, and the egress guard.

    ``engine_mode`` "auto" uses the engine at DOCKER_HOST when one answers and
    starts a private one only when nothing answers there (an engine that answers
    but cannot be used raises, and is never replaced by a substitute);
    "system" insists on DOCKER_HOST; "private"
    always starts one, with ``daemon_options``, as ``fault`` if one is given and aimed at it
    (a fault is only ever applied to an engine the suite starts); "podman" starts a Podman service.
    """

    target = Target.ENGINE
    role = "the engine under test"
    guard: Guard

    def __init__(self, engine_mode: str = "auto", daemon_options: tuple[str, ...] = (), run: Run | None = None,
                 fault: Fault | None = None, dockerd: str | None = None):
        if engine_mode not in ENGINE_MODES:
            raise ValueError(f"engine mode must be one of {ENGINE_MODES}")
        if fault is not None and engine_mode != "private":
            raise ValueError(f"fault {fault.name} needs a private engine")
        super().__init__(run or Run(), dockerd, fault)
        self.engine_mode = engine_mode
        self.daemon_options = daemon_options
        self.reservations = Reservations()

    def _setup(self, stack: ExitStack) -> None:
        stack.callback(self.reservations.release_all)
        super()._setup(stack)
        self.guard = stack.enter_context(Guard(
            self.engine.netns, self.engine.bridge.subnet, [self.upstream.slot.link, self.upstream.slot.remote_net]))

    def _start_engine(self, stack: ExitStack) -> Engine:
        engine = self._engine(stack)
        # What a check's own cleanup missed; nothing to ask of an engine that stopped (its processes are killed).
        stack.callback(lambda: None if self.gone() else remove_labelled(engine.client, self.run.id))
        # Its removals are waited for before the sweep: what is still being removed is not swept.
        self.removals = stack.enter_context(Removals())
        return engine

    def _engine(self, stack: ExitStack) -> Engine:
        if self.engine_mode == "podman":
            return stack.enter_context(PodmanService(self.run)).engine
        if self.engine_mode != "private":
            try:
                engine = Engine.connect(docker_host())
            except NoEngine:
                if self.engine_mode == "system":
                    raise
                log.warning("no engine answers at %s: starting a private one", docker_host())
            else:
                stack.callback(engine.client.close)  # an engine the suite did not start is never stopped
                return engine
        return self._private(stack, "eng", self.daemon_options)

    def _resolver(self, stack: ExitStack) -> Resolver:
        """The outside world's resolver, in the upstream namespace."""
        self.upstream = stack.enter_context(Upstream(self.run, self.engine.netns, self.reservations))
        return Resolver(self.upstream.netns, self.upstream.remote, {PROBE_NAME: self.upstream.remote})

    def free_port(self) -> int:
        """A TCP port of the engine's namespace that is free and that no other run on the host may take."""
        low = self.engine.netns.local_port_range().start
        netns = self.engine.netns
        port = self.reservations.first_free(f"port-{netns.inode}",
                                            from_random_start(range(PORT_FLOOR, low if low > PORT_FLOOR else 65536)),
                                            lambda p: _bindable(netns, p))
        if port is None:
            raise RuntimeError(f"no free TCP port from {PORT_FLOOR} up in {netns}")
        return port

    def free_subnet(self, prefix: int = 24):
        """A subnet for a network a check creates, free on this host and held against other runs."""
        subnet = free_subnet(self.engine.netns, self.engine.client, self.reservations, prefix)
        self.guard.nets.append(subnet)
        return subnet

    def run_info(self) -> dict[str, Any]:
        return {
            "run_id": self.run.id,
            **self.engine.describe(),
            "engine_variant": self.fault.name if self.fault else None,
            "probe_image": self.image,
            "upstream": {
                "engine_addr": self.upstream.engine_addr,
                "upstream_addr": self.upstream.upstream_addr,
                "remote": self.upstream.remote,
            },
        }


def _bindable(netns, port: int) -> bool:
    with netns.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True
