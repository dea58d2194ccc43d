"""What lets one container serve many checks: standing containers start once, a stopped one is an error, and a
gateway neighbour entry gone stale is deleted before the next check (read only when a gateway's MAC changed).

The refresh runs on real namespaces: an "engine" with a bridge holding the gateway, and a "container" behind a
veth on it; nothing leaves them.
"""

import os
from types import SimpleNamespace

import pytest

from conformance.checks.standing import ROLES, Standing
from conformance.lab.engines import scope as scope_module
from conformance.lab.engines.scope import Scope
from conformance.lab.kernel.netns import NamedNetns
from conformance.lab.safety.identity import Run
from conformance.lab.safety.reserve import from_random_start

GATEWAY = "10.97.0.1"
MAC_BEFORE, MAC_AFTER = "02:cf:00:00:00:01", "02:cf:00:00:00:02"
NUD_REACHABLE = 0x02


class FakeBox:
    """A container as Scope and Standing read it: attrs, reload, wait_listening."""

    def __init__(self, name: str, running: bool = True):
        self.name = self.id = name
        self.listened: list[int] = []
        self.attrs = {"State": {"Running": running, "Status": "running" if running else "exited", "ExitCode": 0,
                                "Pid": 1},
                      "HostConfig": {"NetworkMode": "bridge"},
                      "NetworkSettings": {"Networks": {"bridge": {"Gateway": GATEWAY}}}}

    def reload(self) -> None:
        pass

    def wait_listening(self, port: int) -> None:
        self.listened.append(port)


class FakeScope:
    def __init__(self) -> None:
        self.started: list[list[str]] = []
        self.boxes: dict[str, FakeBox] = {}

    def containers(self, **specs: dict) -> list[FakeBox]:
        assert all(spec == ROLES[role] for role, spec in specs.items())
        self.started.append(list(specs))
        self.boxes.update({role: FakeBox(role) for role in specs})
        return [self.boxes[role] for role in specs]


def test_standing_containers_start_once_each_and_together():
    scope = FakeScope()
    standing = Standing(scope)  # type: ignore[arg-type]
    plain, server = standing("plain", "server")
    again, client = standing("server", "client")
    assert scope.started == [["plain", "server"], ["client"]]
    assert again is server and server.listened, "the server was started again, or used before it listened"
    assert (plain.name, client.name) == ("plain", "client")


def test_a_standing_container_that_stopped_is_an_error_naming_it():
    scope = FakeScope()
    standing = Standing(scope)  # type: ignore[arg-type]
    (host,) = standing("host")
    host.attrs["State"].update(Running=False, Status="exited", ExitCode=137)
    with pytest.raises(RuntimeError, match=r"standing host container host stopped .* exited, exit code 137"):
        standing("host")


def test_candidates_come_from_a_random_start_each_once():
    candidates = list(range(10))
    seen = list(from_random_start(candidates))
    start = seen[0]
    assert seen == candidates[start:] + candidates[:start]
    assert list(from_random_start([])) == []


@pytest.fixture
def engine_and_container():
    """(engine, container): the engine's br0 holds GATEWAY/24 with MAC_BEFORE; the container's eth0, a veth to
    it, holds 10.97.0.2/24 and a neighbour entry for the gateway at MAC_BEFORE."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create namespaces")
    with NamedNetns(Run().name("engine")) as engine, NamedNetns(Run().name("box")) as box:
        with engine.iproute() as ipr:
            ipr.link("add", ifname="br0", kind="bridge", address=MAC_BEFORE)
        engine.up("br0", f"{GATEWAY}/24")
        engine.add_veth("vb0", "eth0", peer_netns=box)
        engine.up("vb0", master="br0")
        box.up("eth0", "10.97.0.2/24")
        with box.iproute() as ipr:
            ipr.neigh("replace", dst=GATEWAY, lladdr=MAC_BEFORE, ifindex=ipr.link_lookup(ifname="eth0")[0],
                      state=NUD_REACHABLE)
        yield engine, box


def _scope_over(engine, box, monkeypatch) -> tuple[Scope, list]:
    """A Scope whose one container is *box*; the list records each time it reads the container's namespace."""
    lab = SimpleNamespace(engine=SimpleNamespace(client=None, netns=engine), removals=None)
    scope = Scope(lab)  # type: ignore[arg-type]
    scope._containers.append(FakeBox("c1"))  # type: ignore[arg-type]
    reads: list = []
    monkeypatch.setattr(scope_module, "namespace_of", lambda pid: reads.append(pid) or box)
    return scope, reads


def _gateway_entry(box) -> str | None:
    return {n["dst"]: n["lladdr"] for n in box.neighbours()}.get(GATEWAY)


def test_a_gateway_entry_gone_stale_is_deleted(engine_and_container, monkeypatch):
    engine, box = engine_and_container
    scope, reads = _scope_over(engine, box, monkeypatch)
    assert scope.refresh_gateways() == [] and _gateway_entry(box) == MAC_BEFORE, "a fresh entry was touched"
    with engine.iproute() as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname="br0")[0], address=MAC_AFTER)
    assert scope.refresh_gateways() == [f"c1: gateway {GATEWAY} was at {MAC_BEFORE}, is now at {MAC_AFTER}"]
    assert _gateway_entry(box) is None, "the stale entry is still there"
    assert len(reads) == 2


def test_a_container_is_read_again_only_when_its_gateway_changed_its_mac(engine_and_container, monkeypatch):
    engine, box = engine_and_container
    scope, reads = _scope_over(engine, box, monkeypatch)
    scope.refresh_gateways()
    scope.refresh_gateways()
    assert len(reads) == 1, "the container's neighbour table was read though its gateway kept its MAC"
