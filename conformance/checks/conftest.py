"""Fixtures for the checks: one run and one lab per session, one scope and its namespaces per check.

Checks that need no engine (raw namespaces) take ``namespaces`` and never ``lab``,
so they run on a machine with no Docker at all.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack
from typing import TypeVar

import pytest

from conformance.lab import EngineUnavailable, Lab, Scope
from conformance.lab.background import Background, Stopping
from conformance.lab.engines.configured import ConfiguredLab
from conformance.lab.engines.engine import Engine, docker_host, served_by_podman
from conformance.lab.engines.lab import EngineLab, Target
from conformance.lab.engines.probe import ProbeUnavailable
from conformance.lab.engines.two_hosts import TwoHosts
from conformance.lab.faults import BY_NAME
from conformance.lab.faults.fault import Fault
from conformance.lab.kernel.netns import NamedNetns
from conformance.lab.managed import Managed
from conformance.lab.safety.identity import Run
from conformance.lab.safety.sweep import Liveness, sweep_dead_runs
from conformance.plugin import preflight, require, run_facts
from conformance.plugin.needs import needs_engine
from conformance.plugin.preflight import Problem
from conformance.plugin.scheduling import lab_early, second_engine_early, two_hosts_early
from conformance.reports.files import write_atomic
from conformance.reports.results import engine_gone, ran_on

from .standing import Standing

L = TypeVar("L", bound=Managed)
EARLY_LAB = pytest.StashKey[Background]()
SECOND_ENGINE = pytest.StashKey[Background]()
TWO_HOSTS = pytest.StashKey[Background]()
STOPPING = pytest.StashKey[Stopping]()
UNDER_TEST = pytest.StashKey[Lab]()  # the lab under test, once a check took it
BUILD = pytest.StashKey["str | None"]()  # the dockerd the run's other private engines start from
GONE_FIX = "find in the engine's log why it stopped, then run the suite again: no claim after it was checked"

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
    with ExitStack() as stack:
        stack.enter_context(Liveness(run))
        request.config.stash[STOPPING] = stack.enter_context(Stopping())  # waited for before the lock goes
        run_facts(request.config).found(preflight.kernel(run))
        require(request, "namespaces")
        _start_early(request.config, request.session.items, run, stack)
        yield run


def _start_early(config: pytest.Config, items: list[pytest.Item], run: Run, stack: ExitStack) -> None:
    """Start, in the background, what this process will need and can build while its first checks run
    (conformance/plugin/scheduling.py says when): the lab, whose engine may be a private one to start, the
    configured engine and the two-host lab.  The fixtures below then take them from the stash; *stack*
    stops, at the end of the run, those no check took (or whose checks were all skipped)."""
    if run_facts(config).taking("engine"):
        return  # the fixtures fail with the problem's line; nothing to start
    for key, wanted, make in ((EARLY_LAB, lab_early, _new_lab),
                              (SECOND_ENGINE, _configured_early, _configured_lab),
                              (TWO_HOSTS, _two_hosts_early, _two_hosts)):
        if wanted(config, items):
            config.stash[key] = stack.enter_context(Background(make(config, run)))


def _configured_early(config: pytest.Config, items: list[pytest.Item]) -> bool:
    """Not on Podman, where its checks are not applicable (a dockerd beside Podman would be a substitute)."""
    return not _podman_under_test(config) and second_engine_early(config, items)


def _two_hosts_early(config: pytest.Config, items: list[pytest.Item]) -> bool:
    """Not on Podman, where its checks are not applicable (two dockerds beside Podman would be a substitute)."""
    return not _podman_under_test(config) and two_hosts_early(config, items)


def _podman_under_test(config: pytest.Config) -> bool:
    """Whether the engine under test is Podman's, as far as can be known before the lab connects: asked for
    (--engine podman), or serving DOCKER_HOST where the run takes the engine found there."""
    mode = config.option.engine
    return mode == "podman" or (mode != "private" and served_by_podman(docker_host()))


@pytest.fixture
def namespaces(request: pytest.FixtureRequest, run: Run) -> Iterator[Callable[..., NamedNetns]]:
    """``namespaces("ns0", fresh=True)``: a named namespace of this check, removed when it ends (and, under a
    ``--variant`` that changes namespaces, changed as that fault says)."""
    serial = itertools.count()
    fault = _fault(request.config)
    with ExitStack() as stack:
        def make(suffix: str, fresh: bool = False) -> NamedNetns:
            netns = stack.enter_context(NamedNetns(run.name(f"{suffix}-{next(serial)}"), fresh=fresh))
            if fault is not None and fault.target is Target.NAMESPACES and fault.on_namespace is not None:
                fault.on_namespace(netns)
            return netns

        yield make


def _entered(request: pytest.FixtureRequest, what: str, key: pytest.StashKey[Background],
             make: Callable[[pytest.Config, Run], L], run: Run) -> L:
    """The lab object ``make(config, run)``, entered and now the caller's to exit: the one started early under
    *key* (the stash forgets it), else one started now, the same way, and waited for at once.  When no engine can
    serve it, fail the fixture with one line (*what*: the reason), so the checks that need it error with that line
    and no traceback."""
    require(request, "engine")
    config = request.config
    try:
        if key in config.stash:
            early = config.stash[key]
            del config.stash[key]
            return early.take()
        with Background(make(config, run)) as now:
            return now.take()
    except (EngineUnavailable, ProbeUnavailable) as exc:
        failure = f"{what}: {' '.join(str(exc).split())}"
    if key is EARLY_LAB:  # the lab under test: one problem line of the run, which its checks all error with
        problem = Problem(failure, "make the engine able to start a container (its own words, quoted, say "
                          "what refused it), or test another one (--engine private)", "engine")
        run_facts(config).found([problem])
        failure = str(problem)
    pytest.fail(failure, pytrace=False)


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest, run: Run) -> Iterator[Lab]:
    with ExitStack() as stack:
        lab = stack.push(_entered(request, "lab unavailable", EARLY_LAB, _new_lab, run))
        run_facts(request.config).described(lab.run_info())
        request.config.stash[UNDER_TEST] = lab
        yield lab
        _gone_problem(request.config, lab)  # also when only engine-free checks came after it stopped
    _report_guard(request, lab.guard, f"egress-leaks-{run.id}.pcap")


def _fault(config: pytest.Config) -> Fault | None:
    """The run's ``--variant``, the one place it is looked up: each lab, and ``namespaces``, takes it and
    applies it when its target is theirs."""
    return BY_NAME[config.option.variant] if config.option.variant else None


def _new_lab(config: pytest.Config, run: Run) -> Lab:
    option = config.option
    return Lab(engine_mode=option.engine, daemon_options=tuple(option.daemon_opt), run=run,
               fault=_fault(config), dockerd=option.dockerd)


def _build_under_test(config: pytest.Config) -> str | None:
    """The dockerd the configured engine and the two hosts start from: the engine under test's own build.  A
    private engine under test starts from --dockerd, else the dockerd on PATH (None); an engine at DOCKER_HOST
    from its own executable, as the kernel names it, with its package tree (private.py), never the dockerd
    that happens to be on the suite's PATH."""
    if config.option.dockerd or config.option.engine == "private":
        return config.option.dockerd
    if BUILD not in config.stash:
        try:
            engine = Engine.connect(docker_host())
        except EngineUnavailable:  # nothing answers (auto: a private one from PATH), or the run's problem
            config.stash[BUILD] = None
        else:
            try:
                if engine.binary is None:
                    raise EngineUnavailable(f"the executable of the engine under test (pid {engine.pid}) cannot "
                                            "be read, and an engine of another build would be a substitute")
                config.stash[BUILD] = engine.binary
            finally:
                engine.client.close()
    return config.stash[BUILD]


def _configured_lab(config: pytest.Config, run: Run) -> ConfiguredLab:
    return ConfiguredLab(run, dockerd=_build_under_test(config), fault=_fault(config))


def _two_hosts(config: pytest.Config, run: Run) -> TwoHosts:
    return TwoHosts(run, _fault(config), _build_under_test(config))


def _gone_problem(config: pytest.Config, lab: EngineLab) -> Problem | None:
    """The problem line of the lab under test's engine stopping under the run, recorded once; None while it runs."""
    line = lab.gone()
    if line is None:
        return None
    problem = Problem(line, GONE_FIX, "engine")
    run_facts(config).found([problem])
    return problem


def _described(engine: Engine) -> dict:
    return {"product": engine.product, "version": engine.version.get("Version"), "binary": engine.binary}


def _labs_of(item: pytest.Item) -> list[EngineLab]:
    """The labs whose engines a check asked: the two hosts, the configured engine, and the lab under test."""
    used = getattr(item, "funcargs", {})
    labs: list[EngineLab] = []
    if isinstance(used.get("hosts"), TwoHosts):
        labs = [used["hosts"].a, used["hosts"].b]
    elif isinstance(used.get("configured"), ConfiguredLab):
        labs = [used["configured"]]
    under_test = item.config.stash.get(UNDER_TEST, None)
    return [*labs, under_test] if under_test is not None else labs


@pytest.fixture(autouse=True)
def _engine_ran_on(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each claim records the engine it ran on (report.json's ``engine``).  Once the engine under test has
    stopped under the run, a check that needs an engine errors with the problem line that says so."""
    config = request.config
    engine_check = needs_engine(request.fixturenames)
    under_test = config.stash.get(UNDER_TEST, None)
    if engine_check and under_test is not None:
        problem = _gone_problem(config, under_test)
        if problem is not None:
            pytest.fail(str(problem), pytrace=False)
    yield
    if not engine_check:
        return
    labs = _labs_of(request.node)
    engine = labs[0].engine if labs else request.node.funcargs.get("engine")
    if isinstance(engine, Engine):
        request.node.user_properties.append(ran_on(_described(engine)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A check that failed, or whose fixtures did, while an engine it asked had stopped under the run errors with
    the line that says so, whatever it saw (a refused connection, a namespace gone from /proc is no verdict on
    the host; results.py's fold)."""
    report = yield
    if report.failed and report.when in ("setup", "call") and needs_engine(getattr(item, "fixturenames", ())):
        for lab in _labs_of(item):
            gone = _gone_problem(item.config, lab) if lab is item.config.stash.get(UNDER_TEST, None) else lab.gone()
            if gone is not None:
                report.user_properties = [*report.user_properties, engine_gone(str(gone))]
                break
    return report


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


@pytest.fixture(scope="session")
def standing(lab: Lab) -> Iterator[Standing]:
    """The run's standing containers (checks/standing.py): one per plain topology, on this worker, started when
    a check first asks for it and removed when the run ends."""
    with lab.scope() as scope:
        yield Standing(scope)


@pytest.fixture(autouse=True)
def _long_lived_as_if_fresh(request: pytest.FixtureRequest) -> None:
    """A check that reads the module's shared containers or the standing ones meets them as containers started
    for it would be: a gateway's neighbour entry gone stale since (an engine's bridge changed its MAC) is
    deleted first, and the evidence says so (Scope.refresh_gateways)."""
    deleted = [line for name in ("shared", "standing") if name in request.fixturenames
               for line in request.getfixturevalue(name).refresh_gateways()]
    if deleted:
        request.getfixturevalue("evidence").text("stale-gateway-entries", "\n".join(deleted))


@pytest.fixture(scope="module")
def configured(request: pytest.FixtureRequest, run: Run) -> Iterator[ConfiguredLab]:
    """A private engine run with --bridge, --icc=false and --dns, for the claims about those options (under
    ``--variant`` naming a fault aimed at it, with the fault): started early, in the background, where
    conformance/plugin/scheduling.py says so, and stopped as soon as the module's checks are done, in the
    background while the next module's checks run (not at the end of the session, where it would keep a
    worker busy)."""
    product = request.getfixturevalue("engine").product
    if product != "docker":  # a dockerd beside it would be a substitute for the engine under test
        pytest.skip(f"not applicable: engine_product={product!r}: these claims are about dockerd's own options "
                    "(--bridge, --icc, --dns), which it does not have")
    with ExitStack() as stack:
        configured = _entered(request, "cannot start an engine with the options these claims are about", SECOND_ENGINE,
                              _configured_lab, run)
        stack.callback(request.config.stash[STOPPING].later, configured)
        yield configured


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
        found["pcaps"] = [str(write_atomic(request.config.option.report_dir / pcap, guard.pcap()))]
    run_facts(request.config).guarded(found)


@pytest.fixture(scope="module")
def hosts(request: pytest.FixtureRequest, run: Run) -> Iterator[TwoHosts]:
    """Two private engines on a segment of the suite's, in a swarm (conformance/lab/engines/two_hosts.py); under
    ``--variant`` naming one of that lab's faults, with the fault applied.  Module-scoped: its checks are
    one module's (test_hosts.py), and the engines stop with it (in the background, while the next module's
    checks run) rather than idle through the rest of a run."""
    product = request.getfixturevalue("engine").product
    if product != "docker":  # two dockerds beside it would be a substitute for the engine under test
        pytest.skip(f"not applicable: engine_product={product!r}: the two-host lab is two dockerds in a swarm")
    with ExitStack() as stack:
        hosts = _entered(request, "cannot start the two-host lab", TWO_HOSTS, _two_hosts, run)
        stack.callback(request.config.stash[STOPPING].later, hosts,
                       lambda: _report_guard(request, hosts.guard, f"egress-leaks-{run.id}-segment.pcap"))
        run_facts(request.config).described_two_hosts(hosts.run_info())
        yield hosts


def pytest_conformance_engine_facts(request: pytest.FixtureRequest) -> dict:
    """The engine's facts, when a claim's ``applies`` names one (conformance/plugin/binding.py asks, by this hook)."""
    return request.getfixturevalue("engine").facts()
