"""Problems with the environment, found before any check runs, each as one line naming the fix.

A problem names what it takes away: ``everything`` (not root), ``engine`` (every
check that needs the engine), or ``namespaces`` (every check that creates
something, found by trying in a throwaway namespace).  The fixtures that provide
those things fail with the problem's line, so the affected checks error with it,
the rest still run, and the report is written as always.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from packaging.version import Version

from ..lab.engines.engine import Engine, EngineUnavailable, EngineUntrusted, NoEngine, docker_host
from ..lab.kernel.netns import NamedNetns
from ..lab.safety import redact
from ..lab.safety.identity import RUN_DIR, STATE_DIR, Run
from ..lab.safety.trust import Untrusted, private_dir

# Docker 19.03: the oldest engine whose API has everything the checks use.
MIN_API = "1.40"
AFFECTS = ("everything", "engine", "namespaces")


@dataclass(frozen=True)
class Problem:
    """One problem line.  Its text is masked as it is made (safety/redact.py): it lands in run_info, in every
    affected claim's message, in JUnit and Allure, and a DOCKER_HOST can carry a user and password."""

    what: str
    fix: str
    affects: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "what", redact.text(self.what))
        object.__setattr__(self, "fix", redact.text(self.fix))

    def __str__(self) -> str:
        return f"{self.what} — {self.fix}"


def environment(engine_mode: str, dockerd: str | None = None, creates: bool = True) -> list[Problem]:
    """What is wrong before anything is created: privileges, the engine, the tools it needs, and (for a run
    that *creates*, not the audit tier) the suite's own directories, made or checked here before any use."""
    problems = []
    if os.geteuid() != 0:
        problems.append(Problem("not root: the suite creates network namespaces and reads the engine's firewall",
                                "run it as root (sudo python -m conformance)", "everything"))
    elif creates:
        problems += _directories()
    engine = _engine_problem(engine_mode, dockerd)
    if engine is not None:
        problems.append(engine)
    if shutil.which("iptables") is None:
        problems.append(Problem("no iptables on PATH: Docker's bridge networking needs it and the suite reads "
                                "rules with it", "apt-get install iptables", "engine"))
    return problems


def _directories() -> list[Problem]:
    """The state and run directories, where the suite keeps its engines, sockets, locks and images: made
    root's and 0700, or a problem when they exist and another user could have written there."""
    problems = []
    for directory in (STATE_DIR, RUN_DIR):
        try:
            private_dir(directory)
        except (Untrusted, OSError) as exc:
            problems.append(Problem(f"the suite's directory {directory} cannot be trusted: {exc}",
                                    f"remove {directory} (the suite makes it again, root's and 0700)", "namespaces"))
    return problems


def _engine_problem(engine_mode: str, dockerd: str | None = None) -> Problem | None:
    """The engine at DOCKER_HOST, unless the run starts its own.  Under ``auto`` only nothing answering
    there lets the run start a private engine: what answers but cannot be used is a problem, never
    replaced by a substitute the user did not ask for."""
    url = docker_host()
    if engine_mode == "podman":
        if shutil.which("podman") is None:
            return Problem("--engine podman: no podman to start", "apt-get install podman netavark aardvark-dns",
                           "engine")
        return None
    if engine_mode != "private":
        try:
            engine = Engine.connect(url)
        except NoEngine:
            if engine_mode == "system":
                return Problem(f"no Docker engine answers at {url}",
                               "start it (systemctl start docker), or leave out --engine system so the suite "
                               "starts a private engine", "engine")
        except EngineUntrusted as exc:
            return Problem(" ".join(str(exc).split()),
                           "point DOCKER_HOST at root's engine, or pass --engine private to test an engine the "
                           "suite starts itself instead", "engine")
        except EngineUnavailable as exc:
            if "Permission denied" in str(exc):
                return Problem(f"permission denied on {url}", "run as root, or as a member of the docker group",
                               "engine")
            return Problem(" ".join(str(exc).split()),
                           "point DOCKER_HOST at a Docker engine, or pass --engine private to test an engine "
                           "the suite starts itself instead", "engine")
        else:
            try:
                api = engine.version.get("ApiVersion", "0")
                if Version(api) < Version(MIN_API):
                    return Problem(f"the engine at {url} speaks API {api}, older than {MIN_API}",
                                   "upgrade it to Docker 19.03 or later", "engine")
                return None
            finally:
                engine.client.close()
    if dockerd is not None:
        if not (os.path.isfile(dockerd) and os.access(dockerd, os.X_OK)):
            return Problem(f"--dockerd {dockerd}: not an executable file",
                           "give the path of a dockerd binary (an unpacked tree's usr/sbin/dockerd)", "engine")
        return None
    if shutil.which("dockerd") is None:
        return Problem(f"no Docker engine answers at {url}, and there is no dockerd to start a private one",
                       "apt-get install docker.io (or start the engine and set DOCKER_HOST)", "engine")
    return None


def kernel(run: Run) -> list[Problem]:
    """The kernel pieces the checks build on, found by trying them in a throwaway namespace."""
    problems = []
    with NamedNetns(run.name("pre")) as netns:
        for kind, fix in (("veth", "a kernel with CONFIG_VETH"), ("bridge", "a kernel with CONFIG_BRIDGE")):
            try:
                with netns.iproute() as ipr:
                    if kind == "veth":
                        ipr.link("add", ifname="pre0", kind="veth", peer="pre1")
                    else:
                        ipr.link("add", ifname="pre2", kind="bridge")
            except Exception as exc:
                problems.append(Problem(f"the kernel cannot make {kind} devices ({exc})", f"use {fix}",
                                        "namespaces"))
        if shutil.which("iptables") is not None:
            result = netns.run("iptables", "-t", "nat", "-S")
            if result.returncode != 0:
                problems.append(Problem(f"the kernel's netfilter refuses a nat table ({result.stderr.strip()})",
                                        "load nf_tables / iptable_nat, or use a kernel with netfilter NAT",
                                        "engine"))
    return problems
