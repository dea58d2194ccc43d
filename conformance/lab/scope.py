"""Containers and networks of one check, labelled with the run id and removed when it ends."""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import docker
from docker.models.containers import Container
from docker.models.networks import Network

from .netns import Netns, namespace_of
from .reserve import Reservations
from .tally import count
from .wait import wait_for

if TYPE_CHECKING:  # the labs make scopes
    from .shape import EngineLab

SLEEP = ["sleep", "3600"]
_serial = itertools.count(1)


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: str


def tcp_sockets(pid: int):
    """The TCP sockets in the network namespace of *pid*, as procfs's fields (local, remote, state hex, ...)."""
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if path.exists():
            yield from (line.split() for line in path.read_text().splitlines()[1:])


def listening_tcp_ports(pid: int) -> set[int]:
    """TCP ports in LISTEN state in the network namespace of *pid*, read from procfs."""
    return {int(fields[1].rsplit(":", 1)[1], 16) for fields in tcp_sockets(pid) if fields[3] == "0A"}  # TCP_LISTEN


class Scope:
    """What one check (or one module's shared topology) creates in the engine; ``close()`` removes all of it,
    also after a failure: the containers at once, concurrently, then the networks, then its reservations.
    Where the lab has ``removals`` (an executor), that happens there, and the next check need not wait."""

    def __init__(self, lab: EngineLab):
        self.lab = lab
        self.client = lab.engine.client
        self.serial = next(_serial)
        self.reservations = Reservations()
        self._containers: list[Container] = []
        self._networks: list[Network] = []
        self._stack = ExitStack()
        self._stack.callback(self.reservations.release_all)

    def __enter__(self) -> Scope:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.lab.removals is None:
            self._remove()
        else:
            self.lab.removals.submit(self._remove)

    def _remove(self) -> None:
        try:
            for removable, remove in ((self._containers, _remove_container), (self._networks, _remove_network)):
                with ThreadPoolExecutor(max_workers=8) as pool:
                    list(pool.map(remove, removable))
                removable.clear()
        finally:
            self._stack.close()

    def name(self, suffix: str) -> str:
        return self.lab.run.name(f"{self.serial}{suffix}")

    def container(self, suffix: str, command: list[str] | None = None, network: str | None = "bridge",
                  **kwargs) -> Container:
        """Create and start a probe container, removed when the scope closes (also if it fails to start).

        ``network`` takes a network name or host/none/container:NAME; None leaves
        it out, as `docker run` without --network.
        """
        if network in ("host", "none") or (network or "").startswith("container:"):
            kwargs["network_mode"] = network
        else:
            if network is not None:
                kwargs["network"] = network
            # Never let a probe ask the host's real resolver: the suite's resolver answers.  A check
            # about the resolv.conf a container gets by default passes dns=[] and resolves nothing.
            kwargs.setdefault("dns", [self.lab.resolver.address])
        container = self.client.containers.create(
            self.lab.image, command or SLEEP, name=self.name(suffix), labels=self.lab.run.labels,
            init=True, **kwargs,
        )
        count("containers")
        self._containers.append(container)
        container.start()
        container.reload()
        guard = self.lab.guard  # None where the lab's namespace has no uplink to guard
        if guard is not None and container.attrs["State"]["Running"]:
            with suppress(OSError):  # it has already exited: it sends nothing more
                guard.watch(namespace_of(container.attrs["State"]["Pid"]))  # attrs were just read
        return container

    def containers(self, **specs: dict) -> list[Container]:
        """Start independent containers at once: ``containers(srv={"command": [...]}, cli={})``, in order."""
        with ThreadPoolExecutor(max_workers=len(specs) or 1) as pool:
            futures = [pool.submit(self.container, suffix, **spec) for suffix, spec in specs.items()]
            return [future.result() for future in futures]

    def network(self, suffix: str, **kwargs) -> Network:
        network = self.client.networks.create(self.name(suffix), labels=self.lab.run.labels, **kwargs)
        self._networks.append(network)
        return network

    def exec(self, container: Container, *argv: str, timeout: int = 10) -> ExecResult:
        """Run *argv* in *container*, bounded by busybox `timeout`."""
        code, output = container.exec_run(["timeout", str(timeout), *argv], demux=False)
        assert isinstance(output, bytes | None) and code is not None  # neither streamed nor detached
        return ExecResult(code, (output or b"").decode(errors="replace"))

    def sh(self, container: Container, script: str, timeout: int = 10) -> ExecResult:
        return self.exec(container, "sh", "-c", script, timeout=timeout)

    @staticmethod
    def pid(container: Container) -> int:
        container.reload()
        return container.attrs["State"]["Pid"]

    def netns(self, container: Container) -> Netns:
        return namespace_of(self.pid(container))

    def address(self, container: Container, network: str = "bridge") -> str:
        return self.endpoint(container, network)["IPAddress"]

    def mac(self, container: Container, network: str = "bridge") -> str:
        return self.endpoint(container, network)["MacAddress"]

    def endpoint(self, container: Container, network: str = "bridge") -> dict:
        """The container's settings on *network* (``NetworkSettings.Networks``, the only place API 1.52
        keeps addresses); "bridge" is the engine's default network whatever its name (Podman: "podman")."""
        container.reload()
        networks = container.attrs["NetworkSettings"]["Networks"]
        return networks[self.lab.engine.default_network if network == "bridge" and network not in networks
                        else network]

    def hold_port(self, port: int) -> bool:
        """Hold a fixed *port* of the engine's namespace (one an image EXPOSEs) until the check ends, waiting
        while another run holds it; whether nothing else listens on it."""
        engine = self.lab.engine
        self.reservations.hold(f"port-{engine.netns.inode}", port)
        return port not in listening_tcp_ports(engine.pid)

    def wait_listening(self, container: Container, port: int) -> None:
        pid = self.pid(container)
        wait_for(lambda: port in listening_tcp_ports(pid), f"{container.name} to listen on TCP {port}", timeout=15)


def _remove_container(container: Container) -> None:
    # Podman refuses to remove a container that another joins (--network container:X) until that one is
    # gone; the scope removes them all at once, so the other's removal is a moment away.
    for _ in range(50):
        try:
            container.remove(force=True)
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if "dependent containers" not in str(exc):
                raise
            time.sleep(0.2)
    container.remove(force=True)


def _remove_network(network: Network) -> None:
    with suppress(docker.errors.NotFound):
        network.remove()
