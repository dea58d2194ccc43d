"""Real runs of the suite against real engines: healthy, broken on purpose, and the cleanup after.

Each run is `python -m conformance` in a subprocess, as a user would start it,
against a private engine the run starts itself (or the system engine, when one
answers).  A check that cannot fail is a defect, so the faults here break the
behaviour in a private engine and the claims about it must fail.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from conformance.lab.engine import Engine, EngineUnavailable, docker_host
from conformance.lab.netns import namespace_of
from conformance.lab.private import RUN_DIR, STATE_DIR
from conformance.lab.run import LABEL, PREFIX

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create namespaces"),
    pytest.mark.skipif(shutil.which("dockerd") is None, reason="needs dockerd (apt-get install docker.io)"),
]


def run_conformance(report_dir: Path, *args: str) -> tuple[int, dict]:
    completed = subprocess.run([sys.executable, "-m", "conformance", "--report-dir", str(report_dir), *args],
                               capture_output=True, text=True, timeout=600)
    report_path = report_dir / "report.json"
    assert report_path.is_file(), f"no report.json\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    return completed.returncode, json.loads(report_path.read_text())


def statuses(report: dict) -> dict[str, str]:
    return {c["id"]: c["status"] for c in report["claims"]}


def unexpected(report: dict) -> dict[str, str]:
    """Claims whose outcome a healthy host does not explain: anything but a pass, a documented
    inaccuracy's expected failure, or a skip the catalog's ``applies`` gives a reason for."""
    def explained(claim: dict) -> bool:
        return (claim["status"] == "passed"
                or (claim["status"] == "xfailed" and claim["inaccuracy"] is not None)
                or (claim["status"] == "skipped" and bool(claim["applies"])
                    and claim["message"].startswith("not applicable")))
    return {c["id"]: f"{c['status']}: {c['message']}" for c in report["claims"] if not explained(c)}


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


def test_healthy_private_engine_passes_every_claim(tmp_path):
    code, report = run_conformance(tmp_path, "--engine", "private")
    assert report["run_info"]["engine_private"] is True
    assert unexpected(report) == {}
    inaccuracies = {c["id"] for c in report["claims"] if c["inaccuracy"]}
    assert {k for k, v in statuses(report).items() if v == "xfailed"} == inaccuracies
    assert code == 0
    assert_nothing_left(report)


def test_ip_masq_false_fails_the_masquerade_claims(tmp_path):
    code, report = run_conformance(tmp_path, "--engine", "private", "--daemon-opt=--ip-masq=false", "-k", "egress")
    assert statuses(report) == {
        "egress/masquerade-rule": "failed",
        "egress/masquerade-source": "failed",
        "egress/no-nat-between-containers": "passed",
        "container/egress-unchanged": "failed",
        "host/egress-with-host-address": "passed",  # host mode never needed the MASQUERADE rule
    }
    source = next(c for c in report["claims"] if c["id"] == "egress/masquerade-source")
    assert any(e.endswith(".pcap") for e in source["evidence"]), "the capture is not attached"
    assert code == 1
    assert_nothing_left(report)


def test_userland_proxy_false_leaves_publishing_working(tmp_path):
    code, report = run_conformance(tmp_path, "--engine", "private", "--daemon-opt=--userland-proxy=false",
                                   "-k", "ports")
    ports = {k: v for k, v in statuses(report).items() if k.startswith("ports/")}
    assert ports.pop("ports/docker-proxy-per-binding") == "skipped"
    assert ports.pop("ports/reached-at-container-port") == "xfailed"
    assert set(ports.values()) == {"passed"}, ports
    assert unexpected(report) == {}
    assert code == 0
    assert_nothing_left(report)


def test_system_engine_passes_every_claim(tmp_path):
    try:
        Engine.connect(docker_host()).client.close()
    except EngineUnavailable as exc:
        pytest.skip(f"no system engine: {exc}")
    code, report = run_conformance(tmp_path, "--engine", "system")
    assert unexpected(report) == {}
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
    assert unexpected(report) == {}, completed.stdout[-2000:]
    assert completed.returncode == 0
