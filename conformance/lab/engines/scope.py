"""Containers and networks of one check, labelled with the run id and removed when it ends."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, suppress
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import docker
from docker.models.containers import Container
from docker.models.networks import Network

from ..kernel.netns import namespace_of
from ..managed import Managed
from ..safety.reserve import Reservations
from ..tally import count
from .box import Box

if TYPE_CHECKING:  # the labs make scopes
    from .lab import EngineLab

log = logging.getLogger("conformance")
SLEEP = ["sleep", "3600"]
_serial = itertools.count(1)
T = TypeVar("T")


class Removals(Managed):
    """Where the scopes of checks remove what they created, while the next check already runs: removing
    a container takes about as long as starting one, and nothing waits for it but the end of the lab, whose
    exit waits for every removal.  One that failed is logged (the lab's sweep then removes what it left)."""

    def _setup(self, stack: ExitStack) -> None:
        self._pending: list[Future] = []
        stack.callback(self._log_failures)
        self._pool = stack.enter_context(ThreadPoolExecutor(max_workers=2, thread_name_prefix="removal"))

    def submit(self, remove: Callable[[], None]) -> None:
        self._pending.append(self._pool.submit(remove))

    def _log_failures(self) -> None:
        for future in self._pending:
            if future.exception() is not None:
                log.warning("removing a check's containers and networks failed: %s", future.exception())


class Scope(Managed):
    """What one check (or one module's shared topology) creates in the engine; its exit removes all of it, also
    after a failure: the containers at once, concurrently, then the networks, then its reservations.  Where the
    lab has ``removals``, that happens there, and the next check need not wait."""

    def __init__(self, lab: EngineLab):
        self.lab = lab
        self.client = lab.engine.client
        self.serial = next(_serial)
        self.reservations = Reservations()
        self._containers: list[Box] = []
        self._networks: list[Network] = []
        self._gateway_macs: dict[str | None, dict[str, str | None]] = {}  # container id -> its gateways' MACs

    def _setup(self, stack: ExitStack) -> None:
        removals = self.lab.removals
        stack.callback(self._remove if removals is None else partial(removals.submit, self._remove))

    def _remove(self) -> None:
        """The containers, then the networks (one still in use cannot go), then the reservations; each of the three
        is tried even where one before it failed.  Nothing, when the engine stopped under the run: it cannot be
        asked, and its processes are killed as it is stopped (private.py)."""
        if self.lab.gone():
            return
        with ExitStack() as stack:
            stack.callback(self.reservations.release_all)
            stack.callback(_remove_all, self._networks, _remove_network)
            stack.callback(_remove_all, self._containers, _remove_container)

    def name(self, suffix: str) -> str:
        return self.lab.run.name(f"{self.serial}{suffix}")

    def container(self, suffix: str, command: list[str] | None = None, network: str | None = "bridge",
                  **kwargs) -> Box:
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
        container = Box(self.client.containers.create(
            self.lab.image, command or SLEEP, name=self.name(suffix), labels=self.lab.run.labels,
            init=True, **kwargs,
        ), self.lab.engine.default_network)
        count("containers")
        self._containers.append(container)
        try:
            container.start()
        except BaseException:
            # What its create made goes with it, so a name the next check asks for again is free.
            self._containers.remove(container)
            with suppress(docker.errors.APIError):
                _remove_container(container)
            raise
        container.reload()
        self._forget_recycled(container)
        guard = self.lab.guard  # None where the lab's namespace has no uplink to guard
        if guard is not None and container.attrs["State"]["Running"]:
            with suppress(OSError):  # it has already exited: it sends nothing more
                guard.watch(namespace_of(container.attrs["State"]["Pid"]))  # attrs were just read
        return container

    def _forget_recycled(self, box: Box) -> None:
        """Delete the engine's neighbour entries that map one of *box*'s addresses to another MAC: left by a
        container removed moments before at the same address, they would send its replies to the old MAC
        until they expire, which no claim is about.  Podman gives each container a random MAC and announces
        it to no one; Docker derives the MAC from the address before 28 and announces it since."""
        networks = box.attrs["NetworkSettings"]["Networks"] or {}
        macs = {n["IPAddress"]: n["MacAddress"].lower() for n in networks.values()
                if n.get("IPAddress") and n.get("MacAddress")}
        if not macs:
            return
        netns = self.lab.engine.netns
        for entry in netns.neighbours():
            mac = macs.get(entry["dst"])
            if mac and entry["lladdr"] and entry["lladdr"].lower() != mac:
                netns.forget_neighbour(entry["dst"], entry["ifindex"])

    def refresh_gateways(self) -> list[str]:
        """Delete each running container's neighbour entry for its gateway where it holds a MAC the gateway no
        longer has, so a container that serves many checks meets each as one started for it would.

        A Linux bridge whose MAC nobody set takes the lowest of its ports' and changes it as containers come and
        go (Podman's netavark did not set one before 1.9: containers/netavark#833); a container living across
        checks keeps sending to the old MAC until its entry expires (up to about 100 s) and reaches nothing
        beyond the bridge, which no claim is about.  Docker sets its bridges' MAC: nothing is ever stale there.
        What was deleted, one line each, for the check's evidence.

        It runs before every check that uses long-lived containers, so it reads little: the gateways' MACs in
        the engine's namespace, and a container's neighbour table only where one of its gateways has changed
        its MAC since the container's table was last looked at (an entry learnt since holds the MAC then)."""
        gateways = {box: {n["Gateway"] for n in (box.attrs["NetworkSettings"]["Networks"] or {}).values()
                          if n.get("Gateway")}
                    for box in self._containers if box.attrs["HostConfig"]["NetworkMode"] != "host"}
        wanted = set().union(*gateways.values())
        now = self.lab.engine.netns.owner_macs(wanted) if wanted else {}
        deleted = []
        for box, addresses in gateways.items():
            seen = {address: now.get(address) for address in addresses}
            if not addresses or self._gateway_macs.get(box.id) == seen:
                continue
            box.reload()
            if box.attrs["State"]["Running"]:
                netns = namespace_of(box.attrs["State"]["Pid"])  # as just read
                for entry in netns.neighbours():
                    mac = seen.get(entry["dst"])
                    if mac and entry["lladdr"] and entry["lladdr"] != mac:
                        netns.forget_neighbour(entry["dst"], entry["ifindex"])
                        deleted.append(f"{box.name}: gateway {entry['dst']} was at {entry['lladdr']}, is now at {mac}")
            self._gateway_macs[box.id] = seen
        return deleted

    def containers(self, **specs: dict) -> list[Box]:
        """Start independent containers at once: ``containers(srv={"command": [...]}, cli={})``, in order."""
        with ThreadPoolExecutor(max_workers=len(specs) or 1) as pool:
            futures = [pool.submit(self.container, suffix, **spec) for suffix, spec in specs.items()]
            return [future.result() for future in futures]

    def network(self, suffix: str, **kwargs) -> Network:
        network = self.client.networks.create(self.name(suffix), labels=self.lab.run.labels, **kwargs)
        self._networks.append(network)
        return network

    def hold_port(self, port: int) -> bool:
        """Hold a fixed *port* of the engine's namespace (one an image EXPOSEs) until the check ends, waiting
        while another run holds it; whether nothing else listens on it."""
        engine = self.lab.engine
        self.reservations.hold(f"port-{engine.netns.inode}", port)
        return port not in engine.netns.listening_tcp_ports()


def _remove_all(removable: list[T], remove: Callable[[T], None]) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(remove, removable))


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
