"""Real runs of the suite against real engines, and the cleanup after.

Each run is `python -m conformance` in a subprocess, as a user would start it (conformance/commands/runner.py).
On the system engine, beside decoys of every kind, two runs at once (one serial,
one with -n 2) both pass every claim with the same outcomes and leave the decoys
as they were; the namespace claims need no engine; where nothing answers, the
run starts an engine of its own; and `python -m conformance mutate` shows,
against private engines, that every mapped fault is caught and every unusual
healthy configuration passes.  The system engine is conftest.py's: the one that
answers at DOCKER_HOST, or on a fresh machine a plain dockerd for the session.
"""

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import docker
import pytest

from conformance.catalog import catalog
from conformance.commands.mutate import expectations_file, per_check, unexplained
from conformance.commands.runner import EngineOptions, run_suite, start
from conformance.lab.engines.engine import docker_host
from conformance.lab.engines.probe import ensure_probe_image
from conformance.lab.faults import UNUSUAL
from conformance.lab.kernel.netns import NamedNetns, namespace_of
from conformance.lab.safety.sweep import RUNS_DIR, leftovers
from conformance.plugin import expectations
from conformance.reports import schema

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create namespaces"),
    pytest.mark.skipif(shutil.which("dockerd") is None, reason="needs dockerd (apt-get install docker.io)"),
]

CARRIER_FLAGS = 0x40 | 0x10000 | 0x20000  # IFF_RUNNING, IFF_LOWER_UP, IFF_DORMANT
SYSTEM = EngineOptions("system")


def written(report_dir: Path) -> dict:
    """The report.json a real run wrote into *report_dir*, which must follow the schema."""
    report = json.loads((report_dir / "report.json").read_text())
    assert schema.problems(report) == [], f"{report_dir}/report.json does not follow the schema"
    return report


def assert_nothing_left(report: dict) -> None:
    # A run that asked no engine (its checks needed namespaces alone) records no engine_private, and made
    # nothing in any engine; a private engine's objects go with its data-root, which leftovers() sees.
    uses_system_engine = report["run_info"].get("engine_private") is False
    client = docker.DockerClient(base_url=docker_host()) if uses_system_engine else None
    left = {run_id: leftovers(run_id, client) for run_id in report["run_info"]["run_ids"]}
    assert left == {run_id: [] for run_id in left}, "left behind"


@pytest.fixture
def decoys(system_engine):
    """Someone else's workload, one of each kind the suite could harm: a running container with a published
    port (so the nat table holds its rules), a network, a volume, an image tag, a named namespace with a veth
    into it, and a firewall chain with a rule."""
    tag = f"decoy{secrets.token_hex(3)}"
    probe = ensure_probe_image(system_engine)
    root = namespace_of(os.getpid())
    with ExitStack() as stack:
        network = system_engine.networks.create(tag)
        stack.callback(network.remove)
        volume = system_engine.volumes.create(tag)
        stack.callback(volume.remove, force=True)
        system_engine.images.get(probe).tag(f"{tag}/probe", "kept")
        stack.callback(system_engine.images.remove, f"{tag}/probe:kept")
        box = system_engine.containers.run(probe, ["httpd", "-f", "-p", "8080"], name=tag, detach=True,
                                           ports={"8080/tcp": ("127.0.0.1", None)}, volumes={tag: {"bind": "/v"}})
        stack.callback(box.remove, force=True)
        netns = stack.enter_context(NamedNetns(tag))
        stack.enter_context(root.veth(f"{tag}a", f"{tag}b", peer_netns=netns))
        chain = tag.upper()
        for rule in (["-N", chain], ["-A", chain, "-s", "192.0.2.1/32", "-j", "RETURN"]):
            subprocess.run(["iptables", *rule], check=True, capture_output=True)
        stack.callback(subprocess.run, ["iptables", "-X", chain], check=True)
        stack.callback(subprocess.run, ["iptables", "-F", chain], check=True)
        yield tag


def fingerprint(client: docker.DockerClient) -> dict:
    """What a run must leave exactly as it found it, read back the same way each time."""
    links = namespace_of(os.getpid()).links()
    rules = {table: re.sub(r"\[\d+:\d+\]", "", subprocess.run(["iptables-save", "-t", table], check=True,
                                                             capture_output=True, text=True).stdout)
             for table in ("filter", "nat")}
    return {
        "containers": sorted((c.id, c.name, c.status, str(c.ports)) for c in client.containers.list(all=True)),
        "networks": sorted((n.id, n.name) for n in client.networks.list()),
        "volumes": sorted(v.name for v in client.volumes.list()),
        "images": sorted((i.id, tuple(sorted(i.tags))) for i in client.images.list()),
        "namespaces": sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else [],
        # Flags as configured: carrier (RUNNING, LOWER_UP, DORMANT) follows whatever is attached at the moment.
        "links": {name: (link["kind"], link["address"], link["mtu"], link["master"], link["flags"] & ~CARRIER_FLAGS)
                  for name, link in links.items()},
        "rules": {table: [line for line in dump.splitlines() if not line.startswith("#")]
                  for table, dump in rules.items()},
    }


def test_two_runs_at_once_beside_decoys(tmp_path, system_engine, decoys):
    """Hands off what exists, concurrent runs, and -n 2 against serial, on the system engine at once."""
    before = fingerprint(system_engine)
    seen = {kind for kind, value in before.items() if decoys in str(value) or decoys.upper() in str(value)}
    assert seen == set(before), f"the fingerprint misses the decoys in {set(before) - seen}"
    running = {name: start(tmp_path / name, *args, engine=SYSTEM)
               for name, args in (("serial", []), ("parallel", ["-n", "2"]))}
    runs = {name: run.wait(timeout=900) for name, run in running.items()}
    reports = {name: written(tmp_path / name) for name in runs}
    for name, report in reports.items():
        assert unexplained(report) == {}, f"{name}: {runs[name].tail()}"
        assert runs[name].exit == 0, f"{name}: {runs[name].tail()}"
        assert report["run_info"]["egress_guard"]["leaks"] == 0
        assert_nothing_left(report)
    assert reports["parallel"]["run_info"]["workers"] == 2
    outcomes = {name: {c["id"]: c["status"] for c in report["claims"]} for name, report in reports.items()}
    assert outcomes["serial"] == outcomes["parallel"], "-n 2 and serial disagree"
    after = fingerprint(system_engine)
    assert {k: v for k, v in after.items() if v != before[k]} == {}, "a run changed what it did not create"


def test_audit_tier_creates_nothing(tmp_path, system_engine):
    """--tier audit reads the engine and creates nothing: no object, not even for a moment, and no lock."""
    before, start = fingerprint(system_engine), time.time_ns()
    locks = set(RUNS_DIR.glob("*.lock")) if RUNS_DIR.is_dir() else set()
    run = run_suite(tmp_path, "--tier", "audit", timeout=300)
    report = written(tmp_path)
    ran = report["claims"]
    assert ran and {c["tier"] for c in ran} == {"audit"} and {c["status"] for c in ran} == {"passed"}, run.tail()
    assert run.exit == 0
    events = [e for e in system_engine.events(since=start // 10**9, until=int(time.time()) + 1, decode=True,
                                              filters={"event": ["create", "connect", "destroy"]})
              if e["timeNano"] >= start]  # the API counts whole seconds; the test before may end in this one
    assert events == [], "the audit made engine objects"
    assert fingerprint(system_engine) == before
    assert (set(RUNS_DIR.glob("*.lock")) if RUNS_DIR.is_dir() else set()) == locks, "the audit took a run lock"


def test_namespace_claims_need_no_engine(tmp_path):
    """The raw-namespace checks run, and pass, where no Docker engine answers (--engine system forbids
    starting one): a check that asked for the lab would fail with "lab unavailable"."""
    nothing = EngineOptions("system", docker_host=f"unix://{tmp_path}/no-engine.sock")
    run = run_suite(tmp_path, "-k", "netns", engine=nothing, timeout=300)
    report = written(tmp_path)
    assert {c["topic"] for c in report["claims"]} == {"netns"}
    assert unexplained(report) == {}, run.tail()
    assert run.exit == 0


def test_auto_starts_a_private_engine_where_nothing_answers(tmp_path):
    """--engine auto (the default) with nothing at DOCKER_HOST: the run starts an engine of its own, checks
    it, and stops it (where something answers that cannot be used, test_bad_environments.py: a problem)."""
    run = run_suite(tmp_path / "r", "--claim", "defaults/three-networks",
                    engine=EngineOptions(docker_host=f"unix://{tmp_path}/nothing.sock"), timeout=300)
    report = written(tmp_path / "r")
    assert report["run_info"]["engine_private"] is True, run.tail()
    assert report["totals"]["passed"] == 1 and run.exit == 0, run.tail()
    assert_nothing_left(report)


def test_mutation_map_every_fault_caught_and_unusual_engines_pass(tmp_path):
    """The catalog's whole fault map and every unusual configuration, as `python -m conformance mutate`:
    report.json with a ``mutation`` section, summary.md with the score, and every run's own report."""
    report_dir = tmp_path / "mutation"
    completed = subprocess.run([sys.executable, "-m", "conformance", "mutate", "--report-dir", str(report_dir)],
                               capture_output=True, text=True, timeout=3600)
    assert (report_dir / "report.json").is_file(), f"{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    report = written(report_dir)
    mutation = report["mutation"]
    assert mutation["missed"] == [], "faults the mapped checks did not catch"
    inapplicable = sum(len(fault["inapplicable"]) for fault in mutation["faults"].values())
    assert mutation["applied"] + inapplicable == sum(len(claim.faults) for claim in catalog())
    unkilled = {cid: c for cid, c in mutation["checks"].items() if not c["killed_by"] and "no_fault" not in c
                and not c["not_applicable_under"]}
    assert unkilled == {}, "checks no fault killed"
    assert set(mutation["checks"]) == set(catalog().claims)
    assert mutation["healthy_unexplained"] == {}
    assert {name: c["unexplained"] for name, c in mutation["configurations"].items()} == {
        variant.name: {} for variant in UNUSUAL}
    # A configuration's expected failures are reported as such, with the variant's reason, never as passes.
    for variant in UNUSUAL:
        for claim_id, text in mutation["configurations"][variant.name]["expected"].items():
            assert claim_id in variant.expected and text.startswith("xfailed: "), (variant.name, claim_id, text)
    assert "## Mutation score" in (report_dir / "summary.md").read_text()
    masquerade = written(report_dir / "faults" / "ip-masq-off")
    source = next(c for c in masquerade["claims"] if c["id"] == "egress/masquerade-source")
    assert any(e.endswith(".pcap") for e in source["evidence"]), "the capture that caught the fault is not attached"
    assert completed.returncode == 0, completed.stdout[-2000:]
    for run_report in report_dir.glob("*/**/report.json"):
        assert_nothing_left(written(run_report.parent))


def test_mutation_bookkeeping(tmp_path):
    """A healthy variant's expected failures reach the run as a loadable expectations file with its engines
    and reasons; per_check sorts each mapped fault into killed, missed or not applicable."""
    variant = next(v for v in UNUSUAL if v.expected)
    known = expectations.load(expectations_file(variant, tmp_path), catalog().claims)
    assert known.when == dict(variant.expected_when)
    assert {cid: e.reason for cid, e in known.expected.items()} == {
        cid: f"{variant.name}: {' '.join(why.split())}" for cid, why in variant.expected.items()}
    claim = next(c for c in catalog() if len(c.faults) >= 2)
    first, second = claim.faults[:2]
    faults = {first: {"claims": {claim.id: {"status": "failed"}}, "inapplicable": []},
              second: {"claims": {claim.id: {"status": "skipped"}}, "inapplicable": [claim.id]}}
    assert per_check(catalog(), faults)[claim.id] == {"killed_by": [first], "missed_by": [],
                                                       "not_applicable_under": [second]}
