"""Crash-safe cleanup: every run holds a liveness lock, and what a dead run left is found by its id.

A run takes an exclusive flock on ``runs/<id>.lock`` before it creates anything
and holds it until everything is removed.  The kernel drops the lock when the
process dies, however it dies (SIGKILL included), so a lock that can be taken
belongs to a dead run.  Sweeping such a run removes, by its ``cf<id>`` prefix
and label only: the processes of its private engines and their containers, its
named namespaces, its links in the suite's namespace, its state directories, and
its containers and networks in the system engine.  A live run's lock cannot be
taken, so its objects are never touched.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from pathlib import Path

import docker
from docker.models.containers import Container
from docker.models.networks import Network
from pyroute2 import netns as pyroute2_netns

from ..engines.engine import EngineClient, docker_host
from ..engines.private import kill_engine_processes, unmount_below
from ..kernel.netns import Netns
from ..kernel.procs import processes
from .identity import LABEL, PREFIX, RUN_DIR, STATE_DIR, Run
from .reserve import Lock

RUNS_DIR = STATE_DIR / "runs"


class Liveness(Lock):
    """``with Liveness(run):`` — this run is alive for exactly as long as the block runs: a lab object like any
    other, entered first and exited last, after everything the run made is gone."""

    def __init__(self, run: Run):
        super().__init__(RUNS_DIR / f"{run.id}.lock")


def dead_runs() -> list[str]:
    """Ids of runs whose lock nobody holds any more."""
    dead = []
    for lock in sorted(RUNS_DIR.glob("*.lock")) if RUNS_DIR.is_dir() else []:
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            dead.append(lock.stem)
        except BlockingIOError:
            pass  # alive
        finally:
            os.close(fd)
    return dead


_RUN_PATH = re.compile(r"/docker-net-conformance/" + PREFIX + r"([0-9a-f]{6})-")


def orphaned_runs() -> list[str]:
    """Ids of runs that left directories, mounts or processes under the suite's paths (which carry the run's
    prefix: a private engine's data-root, exec-root, shims, containerd) and hold no lock file at all: a live
    run takes its lock before it creates anything, so theirs are dead (a run that ended while an engine of its
    own had died under it, before the suite killed what such an engine leaves)."""
    found = {m.group(1) for base in (RUN_DIR, STATE_DIR) for path in base.glob(f"{PREFIX}*-*")
             if (m := _RUN_PATH.search(str(path) + "/"))}
    found |= {m.group(1) for line in Path("/proc/self/mountinfo").read_text().splitlines()
              if (m := _RUN_PATH.search(line.split()[4]))}
    found |= {m.group(1) for _, argv in processes() for arg in argv if (m := _RUN_PATH.search(arg))}
    return sorted(run_id for run_id in found if not (RUNS_DIR / f"{run_id}.lock").exists())


def run_of(pid: int) -> str | None:
    """The id of the live run that process *pid* runs, if it runs one: a liveness lock names its holder."""
    for lock in RUNS_DIR.glob("*.lock") if RUNS_DIR.is_dir() else []:
        try:
            if lock.read_text().strip() == str(pid):
                return lock.stem
        except FileNotFoundError:  # that run just ended
            continue
    return None


def _kill_processes(prefix: str) -> list[str]:
    """Kill the private engines of the run (their argv names its directories) and their containers' processes."""
    return kill_engine_processes(f"/docker-net-conformance/{prefix}-", STATE_DIR.glob(f"{prefix}-*"))


def sweep(run_id: str, client: docker.DockerClient | None = None) -> list[str]:
    """Remove everything of run *run_id*, which must be dead; what was removed, one line each."""
    prefix = f"{PREFIX}{run_id}"
    removed = _kill_processes(prefix)
    for name in pyroute2_netns.listnetns():
        if name.startswith(f"{prefix}-"):
            pyroute2_netns.remove(name)
            removed.append(f"namespace {name}")
    own = Netns("/proc/self/ns/net")
    for name in own.links():
        if name.startswith(prefix) and own.delete(name):  # a veth takes its peer with it
            removed.append(f"link {name}")
    for base in (RUN_DIR, STATE_DIR):
        for path in base.glob(f"{prefix}-*"):
            unmount_below(path)
            shutil.rmtree(path, ignore_errors=True)
            removed.append(f"directory {path}")
    if client is not None:
        removed += remove_labelled(client, run_id)
    (RUNS_DIR / f"{run_id}.lock").unlink(missing_ok=True)
    return removed


def leftovers(run_id: str, client: docker.DockerClient | None = None) -> list[str]:
    """What of run *run_id* still exists, one line each, removing nothing: empty once a run ended well."""
    prefix = f"{PREFIX}{run_id}"
    found = [f"namespace {n}" for n in pyroute2_netns.listnetns() if n.startswith(f"{prefix}-")]
    found += [f"directory {p}" for base in (RUN_DIR, STATE_DIR) for p in base.glob(f"{prefix}-*")]
    found += [f"link {n}" for n in Netns("/proc/self/ns/net").links() if n.startswith(prefix)]
    found += [f"process {pid}" for pid, argv in processes() if any(f"/docker-net-conformance/{prefix}-" in a
                                                                   for a in argv)]
    found += [f"mount {point}" for line in Path("/proc/self/mountinfo").read_text().splitlines()
              if f"/docker-net-conformance/{prefix}-" in (point := line.split()[4])]
    found += [f"lock {p}" for p in RUNS_DIR.glob(f"{run_id}.lock")]
    if client is not None:
        found += [f"{kind} {item.name}" for kind, item in labelled(client, run_id)]
    return found


def labelled(client: docker.DockerClient, run_id: str) -> list[tuple[str, Container | Network]]:
    """The containers, then the networks, of engine *client* labelled with run *run_id*: ("container", c)..."""
    selector: dict[str, str | list[str] | bool] = {"label": f"{LABEL}={run_id}"}
    return ([("container", c) for c in client.containers.list(all=True, filters=selector)]
            + [("network", n) for n in client.networks.list(filters=selector)])


def remove_labelled(client: docker.DockerClient, run_id: str) -> list[str]:
    """Remove what of run *run_id* engine *client* holds (containers first: a network in use cannot go);
    what was removed, one line each.  The lab's last word on its own engine, and the sweep's on a dead run's."""
    removed = []
    for kind, item in labelled(client, run_id):
        if isinstance(item, Container):
            item.remove(force=True)
        else:
            item.remove()
        removed.append(f"{kind} {item.name}")
    return removed


def system_client() -> docker.DockerClient | None:
    """A client of the engine at DOCKER_HOST, if one answers: dead runs may have left containers there."""
    try:
        client = EngineClient(base_url=docker_host(), timeout=10)
        client.ping()
        return client
    except (docker.errors.DockerException, OSError):
        return None


def sweep_dead_runs() -> dict[str, list[str]]:
    """Sweep every dead run (and every orphaned one): {run id: what was removed}."""
    dead = sorted({*dead_runs(), *orphaned_runs()})
    if not dead:
        return {}
    client = system_client()
    try:
        return {run_id: sweep(run_id, client) for run_id in dead}
    finally:
        if client is not None:
            client.close()
