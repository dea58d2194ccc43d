"""The engine the report names: with DOCKER_HOST at an engine of another build than the dockerd on the suite's
PATH, the configured engine and the two hosts start from the engine under test's own binary and package tree,
and each claim records the engine it ran on.  Before, they started from PATH's dockerd, so their claims were
checked on the other build and reported as the engine under test's."""

import os
import shutil
import subprocess

import pytest

from conformance.commands.runner import EngineOptions, run_suite
from conformance.lab.engines import builds
from conformance.lab.engines.private import PrivateEngine
from conformance.lab.safety.identity import Run
from conformance.lab.safety.sweep import Liveness

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the suite runs as root")

FETCHED = builds.CACHE / "trixie" / "tree"  # Docker 26.1; PATH's is 20.10


@pytest.mark.skipif(not (FETCHED / "usr/sbin/dockerd").is_file(),
                    reason="no trixie build (python -m conformance.lab.engines.builds trixie)")
def test_second_engines_start_from_the_engine_under_test(tmp_path):
    # A tree of the operator's own, as an installation elsewhere would be (a copy of the fetched one's programs).
    (tmp_path / "tree" / "usr").mkdir(parents=True)
    for part in ("sbin", "bin"):
        subprocess.run(["cp", "-a", str(FETCHED / "usr" / part), str(tmp_path / "tree" / "usr")], check=True)
    other = tmp_path / "tree" / "usr" / "sbin" / "dockerd"
    assert os.path.realpath(shutil.which("dockerd") or "") != str(other)
    run = Run()
    with Liveness(run), PrivateEngine(run, "sys", dockerd=other) as system:
        under_test = system.engine.version["Version"]
        finished = run_suite(tmp_path / "r", "--claim", "defaults/daemon-bridge-option", "--claim",
                             "hosts/overlay-reaches-across-hosts", "--claim", "none/only-loopback",
                             engine=EngineOptions(engine="system", docker_host=system.url))
    report = finished.required()
    assert finished.exit == 0, finished.tail()
    assert report["run_info"]["engine_version"] == under_test
    engines = {c["id"]: c["engine"] for c in report["claims"]}
    assert set(engines) == {"defaults/daemon-bridge-option", "hosts/overlay-reaches-across-hosts", "none/only-loopback"}
    for claim, engine in engines.items():
        assert engine == {"product": "docker", "version": under_test, "binary": str(other)}, (claim, engine)
