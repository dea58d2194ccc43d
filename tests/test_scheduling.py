"""-n N's scheduler (conformance/scheduling.py) on the real catalog's checks: whole modules longest first,
the namespace checks one by one at the end, the second engine's module second on the early worker."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from conformance.runner import run_suite
from conformance.scheduling import EARLY_WORKER, ChecksScheduling

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


def test_first_assignments_are_the_longest_modules_and_the_second_engine(collection):
    scheduler, (early, other) = scheduled(collection)
    units = {}
    for nodeid in collection:
        units.setdefault(scheduler._split_scope(nodeid), {})[nodeid] = False
    longest = sorted((u for u in units if not scheduler._second_engine(units[u])),
                     key=lambda u: -scheduler._cost(units[u]))
    assert [module(collection[i]) for i in early.sent][:1] == [module(longest[0])]
    assert {module(collection[i]) for i in early.sent} == {module(longest[0]), "test_configured.py"}
    assert {module(collection[i]) for i in other.sent} == {module(longest[1])}
    netns = [u for u in units if "test_netns.py::" in u]
    assert len(netns) == sum("test_netns.py::" in n for n in collection) > 1, "the namespace checks are not one by one"
    assert set(list(scheduler.workqueue)[-len(netns):]) == set(netns), "the namespace checks do not come last"


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
