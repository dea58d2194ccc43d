"""Fixtures for the checks: one run and one lab per session, one scope and its namespaces per check.

Checks that need no engine (raw namespaces) take ``namespaces`` and never ``lab``,
so they run on a machine with no Docker at all.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack

import pytest

from conformance import preflight
from conformance.lab import EngineUnavailable, Lab, Scope
from conformance.lab.background import Background
from conformance.lab.configured import ConfiguredLab
from conformance.lab.engine import Engine, docker_host
from conformance.lab.hosts import FAULTS_BY_NAME as HOST_FAULTS
from conformance.lab.hosts import TwoHosts
from conformance.lab.netns import NamedNetns
from conformance.lab.probe import ProbeUnavailable
from conformance.lab.run import Run
from conformance.lab.sweep import Liveness, sweep_dead_runs
from conformance.lab.variants import VARIANTS
from conformance.plugin import require, run_facts
from conformance.scheduling import lab_early, second_engine_early

EARLY_LAB = pytest.StashKey[Background]()
SECOND_ENGINE = pytest.StashKey[Background]()

log = logging.getLogger("conformance")


@pytest.fixture(scope="session")
def run(request: pytest.FixtureRequest) -> Iterator[Run]:
    """This run's identity: every name, label and namespace the suite creates carries its id.

    Before anything is created, the leftovers of runs that died (SIGKILL, power loss) are swept;
    this run's own liveness lock keeps every other run's sweep away from its objects.
    """
    require(request, "namespaces")
    for run_id, removed in sweep_dead_runs().items():
        log.warning("swept the leftovers of dead run %s: %s", run_id, ", ".join(removed) or "nothing")
    run = Run()
    run_facts(request.config).ran(run.id)
    with Liveness(run):
        run_facts(request.config).found(preflight.kernel(run))
        require(request, "namespaces")
        early = _start_early(request.config, request.session.items, run)
        try:
            yield run
        finally:
            for background in reversed(early):  # stopped already, unless no check took it or it failed
                background.close()


def _start_early(config: pytest.Config, items: list[pytest.Item], run: Run) -> list[Background]:
    """Start, in the background, what this process will need and can build while its first checks run
    (conformance/scheduling.py says when): the lab, whose engine may be a private one to start, and the
    second engine.  The fixtures below then take them from the stash."""
    if run_facts(config).taking("engine"):
        return []  # the fixtures fail with the problem's line; nothing to start
    started = []
    for key, wanted, make in ((EARLY_LAB, lab_early, lambda: _new_lab(config.option, run)),
                              (SECOND_ENGINE, second_engine_early,
                               lambda: ConfiguredLab(run, dockerd=config.option.dockerd))):
        if wanted(config, items):
            config.stash[key] = Background(make())
            started.append(config.stash[key])
    return started


def _taken(config: pytest.Config, key: pytest.StashKey, make: Callable):
    """What was started early under *key* (now the caller's: the stash forgets it), else ``make()``."""
    if key not in config.stash:
        return make()
    early = config.stash[key]
    del config.stash[key]
    return early


@pytest.fixture
def namespaces(request: pytest.FixtureRequest, run: Run) -> Iterator[Callable[..., NamedNetns]]:
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
def lab(request: pytest.FixtureRequest, run: Run) -> Iterator[Lab]:
    lab = _started(request, "lab unavailable",
                   _taken(request.config, EARLY_LAB, lambda: _new_lab(request.config.option, run)))
    try:
        run_facts(request.config).described(lab.run_info())
        yield lab
    finally:
        lab.__exit__(None, None, None)
        _report_guard(request, lab.guard, f"egress-leaks-{run.id}.pcap")


def _new_lab(option, run: Run) -> Lab:
    return Lab(engine_mode=option.engine, daemon_options=tuple(option.daemon_opt), run=run,
               variant=VARIANTS[option.variant] if option.variant else None, dockerd=option.dockerd)


@pytest.fixture(scope="session")
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The engine under test: the lab's in the full tier; in the audit tier, the engine at DOCKER_HOST and
    nothing else (no lab, no lock, no sweep: an audit creates nothing)."""
    if request.config.option.tier != "audit":
        yield request.getfixturevalue("lab").engine
        return
    require(request, "engine")
    engine = Engine.connect(docker_host())
    run_facts(request.config).described(engine.describe())
    try:
        yield engine
    finally:
        engine.client.close()


@pytest.fixture
def scope(lab: Lab) -> Iterator[Scope]:
    """Containers and networks of this check, removed when it ends, however it ends."""
    with lab.scope() as scope:
        yield scope


@pytest.fixture(scope="module")
def shared(lab: Lab) -> Iterator[Scope]:
    """Containers of a module's shared topology (one set serves many checks that only read it), removed
    once the module's checks are done.  Checks use their own ``scope`` for anything they change."""
    with lab.scope() as shared:
        yield shared


@pytest.fixture(scope="module")
def configured(request: pytest.FixtureRequest, run: Run) -> Iterator[ConfiguredLab]:
    """A private engine run with --bridge, --icc=false and --dns, for the claims about those options:
    started early, in the background, where conformance/scheduling.py says so, and stopped as soon as
    the module's checks are done (not at the end of the session, where it would keep a worker busy)."""
    product = request.getfixturevalue("engine").product
    if product != "docker":  # a dockerd beside it would be a substitute for the engine under test
        pytest.skip(f"not applicable: engine_product={product!r}: these claims are about dockerd's own options "
                    "(--bridge, --icc, --dns), which it does not have")
    starting = _taken(request.config, SECOND_ENGINE, lambda: ConfiguredLab(run, dockerd=request.config.option.dockerd))
    cfg = _started(request, "cannot start an engine with the options these claims are about", starting)
    try:
        yield cfg
    finally:
        starting.__exit__(None, None, None)


@pytest.fixture
def configured_scope(configured: ConfiguredLab) -> Iterator[Scope]:
    with configured.scope() as scope:
        yield scope


def pytest_configure(config: pytest.Config) -> None:
    """The checks need the suite's plugin, which pytest loads only when asked to (it is not auto-loaded)."""
    if not config.pluginmanager.has_plugin("conformance.plugin"):
        raise pytest.UsageError("the checks need the suite's plugin: run docker-net-conformance, "
                                "or give pytest -p conformance.plugin")


def _report_guard(request: pytest.FixtureRequest, guard, pcap: str) -> None:
    """Add one egress guard's findings (the lab's, the two-host segment's) to the run's ``egress_guard``, its
    leaks written to *pcap* in the report directory."""
    found = guard.describe()
    if found["leaks"]:
        found["pcaps"] = [str(guard.write(request.config.option.report_dir / pcap))]
    run_facts(request.config).guarded(found)


HOSTS_STARTING = pytest.StashKey[Future]()


def _uses_hosts(item: pytest.Item) -> bool:
    return "hosts" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The two-host lab takes seconds to stand up: alone, its checks go last and it starts in the background
    with the run (``_two_hosts_early``); under xdist they go first, so that one worker builds it while the
    others run the rest (every worker reorders alike, as xdist requires)."""
    first = hasattr(config, "workerinput")
    items.sort(key=lambda item: _uses_hosts(item) != first)


@pytest.fixture(scope="session", autouse=True)
def _two_hosts_early(request: pytest.FixtureRequest) -> Iterator[None]:
    """Start the two-host lab in the background as the run begins, when this process will run its checks
    and is not an xdist worker (there its checks come first anyway)."""
    if (hasattr(request.config, "workerinput") or not any(map(_uses_hosts, request.session.items))
            or request.config.option.engine == "podman"):
        yield
        return
    run = request.getfixturevalue("run")
    lab = TwoHosts(run, HOST_FAULTS.get(request.config.option.variant), request.config.option.dockerd)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="two-hosts") as pool:
        starting = request.config.stash[HOSTS_STARTING] = pool.submit(lab.__enter__)
        try:
            yield
        finally:
            if starting.exception() is None:  # stood up, though no check took it (all were skipped)
                lab.__exit__(None, None, None)


@pytest.fixture(scope="module")
def hosts(request: pytest.FixtureRequest, run: Run) -> Iterator[TwoHosts]:
    """Two private engines on a segment of the suite's, in a swarm (conformance/lab/hosts.py); under
    ``--variant`` naming one of that lab's faults, with the fault applied.  Module-scoped: its checks are
    one module's (test_hosts.py), and the engines stop with it rather than idle through the rest of a run."""
    product = request.getfixturevalue("engine").product
    if product != "docker":  # two dockerds beside it would be a substitute for the engine under test
        pytest.skip(f"not applicable: engine_product={product!r}: the two-host lab is two dockerds in a swarm")
    starting = request.config.stash.get(HOSTS_STARTING, None)
    lab = _started(request, "cannot start the two-host lab",
                   _Started(starting) if starting else TwoHosts(run, HOST_FAULTS.get(request.config.option.variant),
                                                                request.config.option.dockerd))
    run_facts(request.config).described_two_hosts(lab.run_info())
    try:
        yield lab
    finally:
        lab.__exit__(None, None, None)
        _report_guard(request, lab.guard, f"egress-leaks-{run.id}-segment.pcap")


class _Started:
    """A lab already being entered in the background: entering this waits for it."""

    def __init__(self, future):
        self.future = future

    def __enter__(self):
        return self.future.result()


def pytest_conformance_engine_facts(request: pytest.FixtureRequest) -> dict:
    """The engine's facts, when a claim's ``applies`` names one (conformance/binding.py asks, by this hook)."""
    return request.getfixturevalue("engine").facts()
