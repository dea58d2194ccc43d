"""Fixtures for the checks: one run and one lab per session, one scope and its namespaces per check.

Checks that need no engine (raw namespaces) take ``namespaces`` and never ``lab``,
so they run on a machine with no Docker at all.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from contextlib import ExitStack

import pytest

from conformance.lab import EngineUnavailable, Lab, Scope
from conformance.lab.configured import ConfiguredLab
from conformance.lab.engine import Engine, docker_host
from conformance.lab.netns import NamedNetns
from conformance.lab.probe import ProbeUnavailable
from conformance.lab.run import Run
from conformance.lab.variants import VARIANTS
from conformance.lab.sweep import Liveness, sweep_dead_runs
from conformance import preflight
from conformance.plugin import PROBLEMS, RECORDER, require

log = logging.getLogger("conformance")


@pytest.fixture(scope="session")
def run(request: pytest.FixtureRequest) -> Run:
    """This run's identity: every name, label and namespace the suite creates carries its id.

    Before anything is created, the leftovers of runs that died (SIGKILL, power loss) are swept;
    this run's own liveness lock keeps every other run's sweep away from its objects.
    """
    require(request, "namespaces")
    for run_id, removed in sweep_dead_runs().items():
        log.warning("swept the leftovers of dead run %s: %s", run_id, ", ".join(removed) or "nothing")
    run = Run()
    request.config.stash[RECORDER].run_info["run_id"] = run.id
    with Liveness(run):
        request.config.stash[PROBLEMS] += preflight.kernel(run)
        require(request, "namespaces")
        yield run


@pytest.fixture
def namespaces(request: pytest.FixtureRequest, run: Run) -> Callable[..., NamedNetns]:
    """``namespaces("ns0", fresh=True)``: a named namespace of this check, removed when it ends (and, under a
    ``--variant`` that changes namespaces, changed as that fault says)."""
    serial = itertools.count()
    variant = VARIANTS[request.config.option.variant] if request.config.option.variant else None
    with ExitStack() as stack:
        def make(suffix: str, fresh: bool = False) -> NamedNetns:
            netns = stack.enter_context(NamedNetns(run.name(f"{suffix}-{next(serial)}"), fresh=fresh))
            if variant is not None and variant.namespaces is not None:
                variant.namespaces(netns)
            return netns

        yield make


def _started(request: pytest.FixtureRequest, what: str, lab):
    """Enter *lab*; when no engine can serve it, fail the fixture with one line (*what*: the reason), so the
    checks that need it error with that line and no traceback."""
    require(request, "engine")
    try:
        return lab.__enter__()
    except (EngineUnavailable, ProbeUnavailable) as exc:
        failure = f"{what}: {exc}"
    pytest.fail(failure, pytrace=False)


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest, run: Run) -> Lab:
    option = request.config.option
    lab = _started(request, "lab unavailable", Lab(
        engine_mode=option.engine, daemon_options=tuple(option.daemon_opt), run=run,
        variant=VARIANTS[option.variant] if option.variant else None, dockerd=option.dockerd))
    recorder = request.config.stash[RECORDER]
    try:
        recorder.run_info.update(lab.run_info())
        yield lab
    finally:
        lab.__exit__(None, None, None)
        guard = lab.guard.describe()
        if guard["leaks"]:
            guard["pcap"] = str(lab.guard.write(request.config.option.report_dir / f"egress-leaks-{run.id}.pcap"))
        recorder.run_info["egress_guard"] = guard


@pytest.fixture(scope="session")
def engine(request: pytest.FixtureRequest) -> Engine:
    """The engine under test: the lab's in the full tier; in the audit tier, the engine at DOCKER_HOST and
    nothing else (no lab, no lock, no sweep: an audit creates nothing)."""
    if request.config.option.tier != "audit":
        yield request.getfixturevalue("lab").engine
        return
    require(request, "engine")
    engine = Engine.connect(docker_host())
    request.config.stash[RECORDER].run_info.update(engine.describe())
    try:
        yield engine
    finally:
        engine.client.close()


@pytest.fixture
def scope(lab: Lab) -> Scope:
    """Containers and networks of this check, removed when it ends, however it ends."""
    with lab.scope() as scope:
        yield scope


@pytest.fixture(scope="module")
def shared(lab: Lab) -> Scope:
    """Containers of a module's shared topology (one set serves many checks that only read it), removed
    once the module's checks are done.  Checks use their own ``scope`` for anything they change."""
    with lab.scope() as shared:
        yield shared


@pytest.fixture(scope="session")
def configured(request: pytest.FixtureRequest, run: Run) -> ConfiguredLab:
    """A private engine run with --bridge, --icc=false and --dns, for the claims about those options."""
    product = request.getfixturevalue("engine").product
    if product != "docker":  # a dockerd beside it would be a substitute for the engine under test
        pytest.skip(f"not applicable: engine_product={product!r}: these claims are about dockerd's own options "
                    "(--bridge, --icc, --dns), which it does not have")
    cfg = _started(request, "cannot start an engine with the options these claims are about", ConfiguredLab(run, dockerd=request.config.option.dockerd))
    try:
        yield cfg
    finally:
        cfg.__exit__(None, None, None)


@pytest.fixture
def configured_scope(configured: ConfiguredLab) -> Scope:
    with configured.scope() as scope:
        yield scope


def pytest_configure(config: pytest.Config) -> None:
    """The checks need the suite's plugin, which pytest loads only when asked to (it is not auto-loaded)."""
    if not config.pluginmanager.has_plugin("conformance.plugin"):
        raise pytest.UsageError("the checks need the suite's plugin: run docker-net-conformance, "
                                "or give pytest -p conformance.plugin")
