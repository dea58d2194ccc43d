"""Real runs of the suite against real engines, and the cleanup after.

Each run is `python -m conformance` in a subprocess, as a user would start it.
The system engine must pass every claim; the namespace claims need no engine;
and `python -m conformance mutate` shows, against private engines, that every
mapped fault is caught and every unusual healthy configuration passes.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from conformance.catalog import catalog
from conformance.lab.engine import Engine, EngineUnavailable, docker_host
from conformance.lab.netns import namespace_of
from conformance.lab.private import RUN_DIR, STATE_DIR
from conformance.lab.run import LABEL, PREFIX
from conformance.lab.variants import UNUSUAL
from conformance.mutation import unexplained

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create namespaces"),
    pytest.mark.skipif(shutil.which("dockerd") is None, reason="needs dockerd (apt-get install docker.io)"),
]

REPO = Path(__file__).resolve().parent.parent


def run_conformance(report_dir: Path, *args: str) -> tuple[int, dict]:
    completed = subprocess.run([sys.executable, "-m", "conformance", "--report-dir", str(report_dir), *args],
                               capture_output=True, text=True, timeout=600)
    report_path = report_dir / "report.json"
    assert report_path.is_file(), f"no report.json\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    return completed.returncode, json.loads(report_path.read_text())


def assert_nothing_left(report: dict) -> None:
    prefix = f"{PREFIX}{report['run_info']['run_id']}"
    namespaces = [n for n in os.listdir("/run/netns") if n.startswith(prefix)] if os.path.isdir("/run/netns") else []
    dirs = [p.name for d in (RUN_DIR, STATE_DIR) if d.is_dir() for p in d.iterdir() if p.name.startswith(prefix)]
    links = [name for name in namespace_of(os.getpid()).links() if name.startswith(prefix)]
    assert namespaces == [] and dirs == [] and links == [], f"left behind: {namespaces} {dirs} {links}"
    if not report["run_info"]["engine_private"]:
        client = docker.DockerClient(base_url=docker_host())
        selector = {"label": f"{LABEL}={report['run_info']['run_id']}"}
        assert client.containers.list(all=True, filters=selector) == []
        assert client.networks.list(filters=selector) == []


def test_system_engine_passes_every_claim(tmp_path):
    try:
        Engine.connect(docker_host()).client.close()
    except EngineUnavailable as exc:
        pytest.skip(f"no system engine: {exc}")
    code, report = run_conformance(tmp_path, "--engine", "system")
    assert unexplained(report) == {}
    assert code == 0
    assert_nothing_left(report)


def test_namespace_claims_need_no_engine(tmp_path):
    """The raw-namespace checks run, and pass, where no Docker engine answers (--engine system forbids
    starting one): a check that asked for the lab would fail with "lab unavailable"."""
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    completed = subprocess.run([sys.executable, "-m", "conformance", "--report-dir", str(tmp_path), "--engine",
                                "system", "-k", "netns"], capture_output=True, text=True, timeout=300, env=env)
    report = json.loads((tmp_path / "report.json").read_text())
    assert {c["topic"] for c in report["claims"]} == {"netns"}
    assert unexplained(report) == {}, completed.stdout[-2000:]
    assert completed.returncode == 0


def test_mutation_map_every_fault_caught_and_unusual_engines_pass():
    """The catalog's whole fault map and every unusual configuration, as `python -m conformance mutate`.

    Its report goes to reports/mutation/ in the checkout (report.json with a ``mutation`` section,
    summary.md with the score), where CI keeps it.
    """
    report_dir = REPO / "reports" / "mutation"
    shutil.rmtree(report_dir, ignore_errors=True)
    completed = subprocess.run([sys.executable, "-m", "conformance", "mutate", "--report-dir", str(report_dir)],
                               capture_output=True, text=True, timeout=3600)
    assert (report_dir / "report.json").is_file(), f"{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    report = json.loads((report_dir / "report.json").read_text())
    mutation = report["mutation"]
    assert mutation["missed"] == [], "faults the mapped checks did not catch"
    assert mutation["applied"] == sum(len(claim.faults) for claim in catalog())
    assert mutation["healthy_unexplained"] == {}
    assert {name: c["unexplained"] for name, c in mutation["configurations"].items()} == {
        variant.name: {} for variant in UNUSUAL}
    assert "## Mutation score" in (report_dir / "summary.md").read_text()
    masquerade = json.loads((report_dir / "faults" / "ip-masq-off" / "report.json").read_text())
    source = next(c for c in masquerade["claims"] if c["id"] == "egress/masquerade-source")
    assert any(e.endswith(".pcap") for e in source["evidence"]), "the capture that caught the fault is not attached"
    assert completed.returncode == 0, completed.stdout[-2000:]
    for run_report in report_dir.glob("*/**/report.json"):
        assert_nothing_left(json.loads(run_report.read_text()))
