"""Every engine the project proves, as private engines: Docker 20.10 (the host's), 26.1 (trixie), 28.5 (sid)
and Podman 4.3, through ``python -m conformance matrix`` as a user runs it.

The engines are fetched and unpacked by the suite itself (conformance/lab/engines/builds.py),
so CI on a bare machine needs only Debian's archive.  A healthy Docker engine has
zero failed and zero errored claims, and so has Podman: its claims about Docker's own
features are not applicable (their ``applies`` names ``engine_product: docker``), and its
real differences from the articles are known deviations with their reasons
(fixtures/expectations/podman.yaml), reported xfailed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.commands.runner import EngineOptions, start
from conformance.lab.engines import builds
from conformance.lab.engines.private import STATE_DIR, PrivateEngine, package_tree
from conformance.lab.kernel.procs import cgroups, processes
from conformance.lab.safety.identity import PREFIX, Run
from conformance.lab.safety.sweep import RUNS_DIR, dead_runs, leftovers
from conformance.lab.wait import wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: it starts engines in namespaces")

ENGINES = ("private", "trixie", "sid", "podman")
DOCKER_VERSIONS = {"private": "20.10.", "trixie": "26.1.", "sid": "28.5."}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory) -> Path:
    if shutil.which("podman") is None:
        pytest.skip("no podman (apt-get install podman netavark aardvark-dns catatonit)")
    out = tmp_path_factory.mktemp("engines")
    completed = subprocess.run([sys.executable, "-m", "conformance", "matrix", *(f"--engine={e}" for e in ENGINES),
                                "--out", str(out), "-n", "2"], capture_output=True, text=True, timeout=1800)
    assert (out / "matrix.json").is_file(), f"{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    return out


def report(matrix: Path, name: str) -> dict:
    return json.loads((matrix / name / "report.json").read_text())


def outcomes(report: dict, *statuses: str) -> dict[str, str]:
    return {c["id"]: c["message"].splitlines()[0] if c["message"] else "" for c in report["claims"]
            if c["status"] in statuses}


@pytest.mark.parametrize("name", sorted(DOCKER_VERSIONS))
def test_a_healthy_docker_engine_fails_no_claim(matrix, name):
    found = report(matrix, name)
    info = found["run_info"]
    assert info["engine_product"] == "docker" and info["engine_version"].startswith(DOCKER_VERSIONS[name])
    assert info["engine_private"] and Path(info["engine_binary"]).name == "dockerd"
    assert outcomes(found, "failed", "error", "xpassed") == {}
    assert found["totals"]["passed"] >= 80


def test_podman_differs_only_where_a_finding_says_so(matrix):
    found = report(matrix, "podman")
    info = found["run_info"]
    assert (info["engine_product"], info["engine_version"]) == ("podman", "4.3.1")
    assert outcomes(found, "failed", "error", "xpassed") == {}
    assert outcomes(found, "skipped")["ports/docker-proxy-per-binding"].startswith("not applicable: userland_proxy")


def test_the_matrix_puts_the_engines_differences_first(matrix):
    figures = json.loads((matrix / "matrix.json").read_text())
    assert [e["name"] for e in figures["engines"]] == list(ENGINES)
    assert set(outcomes(report(matrix, "podman"), "failed")) <= set(figures["differing"])
    text = (matrix / "matrix.md").read_text()
    table = text.split("Hosts:")[0]
    assert table.index("where the 4 differ") < table.index("| **netns** |")
    assert "engine podman 4.3.1" in text and "engine docker 28.5.2" in text and "Why they differ:" in text


def test_nothing_is_left_by_any_engine(matrix):
    for name in ENGINES:
        for run_id in report(matrix, name)["run_info"]["run_ids"]:
            assert leftovers(run_id) == [], f"{name} run {run_id}"


def test_a_fetched_build_is_unpacked_once_and_named_by_its_packages(tmp_path):
    first = builds.fetch("trixie")
    again = builds.fetch("trixie")
    assert again == first and first.packages["docker.io"].startswith("26.1.")
    assert {"containerd", "tini"} <= set(first.packages)
    for tool in ("usr/sbin/dockerd", "usr/sbin/docker-proxy", "usr/bin/containerd", "usr/bin/docker-init"):
        assert (first.root / tool).is_file(), tool
    base = builds.CACHE / "trixie" / "apt"
    paths = re.findall(r'"(/[^"]*)"', (base / "apt.conf").read_text())
    assert paths and all(p.startswith(f"{base}/") for p in paths), "the APT configuration must be the suite's own"
    assert " trixie main" in (base / "etc" / "sources.list").read_text()


def test_a_package_tree_comes_first_on_its_daemons_path():
    dockerd = builds.CACHE / "sid" / "tree" / "usr" / "sbin" / "dockerd"
    engine = PrivateEngine(Run(), dockerd=dockerd)
    path = engine._environment()["PATH"].split(":")
    tree = package_tree(dockerd)
    assert path[:2] == [str(tree / "usr/sbin"), str(tree / "usr/bin")]
    assert package_tree(Path("/usr/local/bin/dockerd")) is None


@pytest.mark.skipif(shutil.which("podman") is None, reason="no podman")
def test_a_killed_podman_run_is_swept(tmp_path):
    """SIGKILL while Podman's containers run: `cleanup` removes the service, its conmon monitors, the
    containers' processes and its directories, as for a private dockerd."""
    before = {p.stem for p in RUNS_DIR.glob("*.lock")} if RUNS_DIR.is_dir() else set()
    victim = start(tmp_path / "killed", "-k", "masquerade_source or four_modes", engine=EngineOptions("podman"))

    def running() -> list[str] | None:
        for lock in set(RUNS_DIR.glob("*.lock")) - {RUNS_DIR / f"{b}.lock" for b in before}:
            found = [d.name for d in (STATE_DIR / f"{PREFIX}{lock.stem}-pod" / "data" / "overlay-containers").glob("*")
                     if d.is_dir()]
            if found:
                return [lock.stem, *found]
        return None

    try:
        run_id, *containers = wait_for(running, "a Podman run with a container", timeout=120, interval=0.05)
    finally:
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait()
    wait_for(lambda: run_id in dead_runs(), f"run {run_id}'s lock to be released", timeout=15)
    # Any run starting on this host sweeps dead runs first, so another may have swept this one already.
    subprocess.run([sys.executable, "-m", "conformance", "cleanup"], capture_output=True, timeout=120, check=True)
    assert leftovers(run_id) == []
    in_containers = [pid for pid, _ in processes() if _cgroup_names(pid, containers)]
    assert in_containers == [], f"processes of the killed run's containers: {in_containers}"


def _cgroup_names(pid: int, ids: list[str]) -> bool:
    try:
        return any(cid in cgroups(pid) for cid in ids)
    except OSError:
        return False
