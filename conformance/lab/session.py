"""One run's lab: the engine, the probe image, the upstream namespace and its resolver."""

from __future__ import annotations

import logging
import socket
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

from .engine import Engine, NoEngine, docker_host
from .guard import Guard
from .private import PodmanService, PrivateEngine
from .probe import ensure_probe_image
from .reserve import Reservations, shuffled
from .resolver import PROBE_NAME, Resolver
from .run import LABEL, Run
from .scope import Scope
from .subnets import free_subnet
from .upstream import Upstream
from .variants import Variant

log = logging.getLogger("conformance")

ENGINE_MODES = ("auto", "system", "private", "podman")
# Ports the suite chooses come from below the ephemeral range, where neither -P nor outgoing connections take theirs.
PORT_FLOOR = 20000


class Lab:
    """``with Lab() as lab:`` — set up in order, torn down in reverse, always.

    ``engine_mode`` "auto" uses the engine at DOCKER_HOST when one answers and
    starts a private one only when nothing answers there (an engine that answers
    but cannot be used raises, and is never replaced by a substitute);
    "system" insists on DOCKER_HOST; "private"
    always starts one, with ``daemon_options``, as ``variant`` if one is given
    (a variant is only ever applied to an engine the suite starts).
    """

    def __init__(self, engine_mode: str = "auto", daemon_options: tuple[str, ...] = (), run: Run | None = None,
                 variant: Variant | None = None, dockerd: str | None = None):
        if engine_mode not in ENGINE_MODES:
            raise ValueError(f"engine mode must be one of {ENGINE_MODES}")
        if variant is not None and engine_mode != "private":
            raise ValueError(f"variant {variant.name} needs a private engine")
        self.engine_mode = engine_mode
        self.daemon_options = daemon_options
        self.variant = variant
        self.dockerd = dockerd
        self.run = run or Run()
        self.reservations = Reservations()
        self._stack = ExitStack()

    def __enter__(self) -> Lab:
        try:
            self._stack.callback(self.reservations.release_all)
            self.engine = self._engine()
            self._stack.callback(self._sweep)
            self.removals = Removals()
            self._stack.callback(self.removals.wait)  # before the sweep: what is being removed is not swept
            self.image = ensure_probe_image(self.engine.client)
            self.upstream = self._stack.enter_context(Upstream(self.run, self.engine.netns, self.reservations))
            self.resolver = self._stack.enter_context(Resolver(
                self.upstream.netns, self.upstream.remote, {PROBE_NAME: self.upstream.remote}))
            self.guard = self._stack.enter_context(Guard(
                self.engine.netns, self.engine.bridge.subnet, [self.upstream.slot.link, self.upstream.slot.remote_net]))
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def _engine(self) -> Engine:
        if self.engine_mode == "podman":
            return self._stack.enter_context(PodmanService(self.run))
        if self.engine_mode != "private":
            try:
                engine = Engine.connect(docker_host())
            except NoEngine:
                if self.engine_mode == "system":
                    raise
                log.warning("no engine answers at %s: starting a private one", docker_host())
            else:
                self._stack.callback(engine.client.close)  # an engine the suite did not start is never stopped
                return engine
        if self.variant is None:
            return self._stack.enter_context(PrivateEngine(self.run, "eng", self.daemon_options, dockerd=self.dockerd))
        return self.variant.start(self._stack, self.run, "eng", self.daemon_options, dockerd=self.dockerd)

    def scope(self) -> Scope:
        return Scope(self)

    def _sweep(self) -> None:
        """Remove anything labelled with this run that a check's own cleanup missed."""
        selector: dict[str, str | list[str] | bool] = {"label": f"{LABEL}={self.run.id}"}
        for container in self.engine.client.containers.list(all=True, filters=selector):
            container.remove(force=True)
        for network in self.engine.client.networks.list(filters=selector):
            network.remove()

    def connect(self, port: int, address: str | None = None, timeout: float = 3.0) -> socket.socket:
        """A TCP connection from the upstream namespace, by default to the engine's address."""
        sock = self.upstream.netns.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect((address or self.upstream.engine_addr, port))
        except BaseException:
            sock.close()
            raise
        return sock

    def http_get(self, port: int, path: str = "/", address: str | None = None, timeout: float = 3.0) -> str:
        """GET *path* from the upstream namespace; the response body as text."""
        with self.connect(port, address, timeout) as sock:
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: probe\r\n\r\n".encode())
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        response = b"".join(chunks).decode(errors="replace")
        head, _, body = response.partition("\r\n\r\n")
        if not head.startswith("HTTP/1.") or " 200 " not in head.splitlines()[0]:
            raise ConnectionError(f"unexpected HTTP response: {head.splitlines()[:1]}")
        return body

    def free_port(self) -> int:
        """A TCP port of the engine's namespace that is free and that no other run on the host may take."""
        low = self.engine.netns.local_port_range().start
        netns = self.engine.netns
        port = self.reservations.first_free(f"port-{netns.inode}",
                                            shuffled(range(PORT_FLOOR, low if low > PORT_FLOOR else 65536)),
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
            "engine_variant": self.variant.name if self.variant else None,
            "probe_image": self.image,
            "upstream": {
                "engine_addr": self.upstream.engine_addr,
                "upstream_addr": self.upstream.upstream_addr,
                "remote": self.upstream.remote,
            },
        }


class Removals(ThreadPoolExecutor):
    """Where the scopes of checks remove what they created, while the next check already runs: removing
    a container takes about as long as starting one, and nothing waits for it but the end of the run."""

    def __init__(self):
        super().__init__(max_workers=2, thread_name_prefix="removal")
        self._pending: list[Future] = []

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future = super().submit(fn, *args, **kwargs)
        self._pending.append(future)
        return future

    def wait(self) -> None:
        """Wait for every removal; one that failed is logged (the lab's sweep then removes what it left)."""
        self.shutdown(wait=True)
        for future in self._pending:
            if future.exception() is not None:
                log.warning("removing a check's containers and networks failed: %s", future.exception())


def _bindable(netns, port: int) -> bool:
    with netns.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True
