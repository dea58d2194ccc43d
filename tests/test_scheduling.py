"""The order of a run's checks and -n N's scheduler (conformance/plugin/scheduling.py) on the real catalog's checks:
whole modules longest first, the namespace checks one by one at the end, and the early worker's start:
engine-free checks while the slow engines start, then the two-host module, then the second engine's."""

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest

from conformance.commands.runner import run_suite
from conformance.plugin.needs import FIXTURES
from conformance.plugin.scheduling import COST, EARLY_FILL, EARLY_WORKER, ChecksScheduling

REPO = Path(__file__).resolve().parent.parent


class Worker:
    def __init__(self, name: str):
        self.gateway = SimpleNamespace(id=name)
        self.shutting_down = False
        self.sent: list[int] = []

    def send_runtest_some(self, indices):
        self.sent += indices

    def shutdown(self):
        self.shutting_down = True


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> list[str]:
    listed = run_suite(tmp_path_factory.mktemp("collect"), "--collect-only", cwd=REPO, timeout=300)
    assert listed.exit == 0, listed.tail()
    return [line for line in listed.output.splitlines() if "::" in line]


def scheduled(collection: list[str]):
    config = SimpleNamespace(rootpath=REPO, option=SimpleNamespace(loadscopereorder=True),
                             getvalue=lambda name: {"tx": ["popen", "popen"]}.get(name))
    scheduler = ChecksScheduling(config)
    workers = [Worker(EARLY_WORKER), Worker("gw1")]
    for worker in workers:
        scheduler.add_node(worker)
        scheduler.add_node_collection(worker, collection)
    scheduler.schedule()
    return scheduler, workers


def module(nodeid: str) -> str:
    return nodeid.split("::")[0].rsplit("/", 1)[-1]


def units_of(scheduler: ChecksScheduling, collection: list[str]) -> dict[str, dict[str, bool]]:
    units: dict[str, dict[str, bool]] = {}
    for nodeid in collection:
        units.setdefault(scheduler._split_scope(nodeid), {})[nodeid] = False
    return units


def longest_but_early(scheduler: ChecksScheduling, units: dict[str, dict[str, bool]], *taken: str) -> str:
    """The module of the longest unit that is neither the second engine's, the two hosts' nor in *taken*."""
    rest = [u for u in units if not scheduler._second_engine(units[u]) and not scheduler._two_hosts(units[u])
            and module(u) not in taken]
    return module(max(rest, key=lambda u: scheduler._cost(units[u])))


def test_the_early_worker_starts_the_slow_engines_behind_engine_free_checks(collection):
    """EARLY_WORKER: engine-free checks worth EARLY_FILL (its lab, the second engine and the two hosts start
    meanwhile), then the two-host module, then the second engine's; the other worker the longest of the rest;
    the remaining engine-free checks one by one at the end."""
    scheduler, (early, other) = scheduled(collection)
    units = units_of(scheduler, collection)
    sent = [module(collection[i]) for i in early.sent]
    free = sent[:sent.index("test_hosts.py")]
    assert set(free) == {"test_netns.py"} and len(free) * COST["namespace check"] >= EARLY_FILL
    assert list(dict.fromkeys(sent)) == ["test_netns.py", "test_hosts.py", "test_configured.py"]
    assert {module(collection[i]) for i in other.sent} == {longest_but_early(scheduler, units)}
    netns = [u for u in units if "test_netns.py::" in u]
    assert len(netns) == sum("test_netns.py::" in n for n in collection) > 1, "the namespace checks are not one by one"
    left = len(netns) - len(free)
    assert left > 0 and set(list(scheduler.workqueue)[-left:]) <= set(netns), "the namespace checks do not come last"


def test_without_two_hosts_the_early_worker_gets_the_longest_module_and_the_second_engine(collection):
    without = [nodeid for nodeid in collection if "test_hosts.py" not in nodeid]
    scheduler, (early, other) = scheduled(without)
    units = units_of(scheduler, without)
    longest = sorted(units, key=lambda u: -scheduler._cost(units[u]))
    assert list(dict.fromkeys(module(without[i]) for i in early.sent)) == [module(longest[0]), "test_configured.py"]
    assert {module(without[i]) for i in other.sent} == {longest_but_early(scheduler, units, module(longest[0]))}


def test_a_serial_run_needs_no_engine_first_and_the_two_hosts_last(collection):
    order = list(dict.fromkeys(module(nodeid) for nodeid in collection))
    assert order[0] == "test_netns.py" and order[-1] == "test_hosts.py"
    assert order[-2] == "test_configured.py"


def test_every_check_is_handed_out_once_and_modules_stay_whole(collection):
    scheduler, workers = scheduled(collection)
    while scheduler.workqueue:
        worker = min(workers, key=lambda w: len(w.sent))
        for index in list(worker.sent):
            scheduler.mark_test_complete(worker, index)
        scheduler._reschedule(worker)
    sent = [i for worker in workers for i in worker.sent]
    assert sorted(sent) == list(range(len(collection)))
    owners = {}
    for worker in workers:
        for index in worker.sent:
            if "test_netns.py" not in collection[index]:
                owners.setdefault(module(collection[index]), set()).add(worker.gateway.id)
    assert all(len(held) == 1 for held in owners.values()), owners


def fixtures_defined(path: Path) -> set[str]:
    """The names of the functions the module at *path* decorates with ``@pytest.fixture`` (with arguments or not)."""
    def fixture(decorator: ast.expr) -> bool:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        return ast.unparse(target) == "pytest.fixture"

    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in tree.body
            if isinstance(node, ast.FunctionDef) and any(map(fixture, node.decorator_list))}


def test_the_needs_table_names_the_checks_fixtures_and_no_others():
    """conformance/plugin/needs.py's table is what scheduling, ``list`` and the audit tier know of the fixtures:
    each one conftest.py defines is in it, and so are the plugin's own (``evidence``, and ``claim``, which it
    parametrizes), and nothing else."""
    conftest = fixtures_defined(REPO / "conformance/checks/conftest.py")
    plugin = fixtures_defined(REPO / "conformance/plugin/recording.py") | {"claim"}
    assert conftest and "evidence" in plugin
    assert set(FIXTURES) == conftest | plugin
