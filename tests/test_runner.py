"""conformance/commands/runner.py, the one way the suite's commands and the self-tests run the suite (no root, no
engine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.commands import benchmark
from conformance.commands.runner import EngineOptions, RunFailed, SuiteRun, command, run_suite


def test_engine_options_become_the_suites_arguments_and_environment():
    options = EngineOptions("private", dockerd="/opt/d/usr/sbin/dockerd", variant="ip-masq-off",
                            daemon_opts=("--mtu=1400",))
    assert options.args() == ["--engine", "private", "--dockerd", "/opt/d/usr/sbin/dockerd",
                              "--variant", "ip-masq-off", "--daemon-opt=--mtu=1400"]
    assert options.env() == {}
    assert EngineOptions(docker_host="unix:///x.sock").env() == {"DOCKER_HOST": "unix:///x.sock"}
    argv = command(Path("/tmp/r"), "-k", "netns", engine=EngineOptions("system"))
    assert argv[1:] == ["-m", "conformance", "--report-dir", "/tmp/r", "-q", "--engine", "system", "-k", "netns"]


def test_a_run_without_a_report_fails_naming_its_command_and_an_old_report_never_stands_in(tmp_path):
    (tmp_path / "report.json").write_text('{"claims": []}')  # an earlier run's, in the same directory
    run = run_suite(tmp_path, "--no-such-option", timeout=120)
    assert run.exit == 4 and run.report is None, run.tail()
    assert "--no-such-option" in run.output
    with pytest.raises(RunFailed, match=r"no report from .*--no-such-option"):
        run.required()


def test_a_benchmark_run_reports_the_wall_its_machine_cpu_allows(tmp_path):
    report = {"run_info": {"created": {"containers": 10, "namespaces": 4}}, "totals": {"passed": 3},
              "claims": [{"id": "a/b", "duration": 1.5}]}
    figures = benchmark.summarize(SuiteRun(["x"], tmp_path, 0, 12.0, "", report), 30.0, ["-n", "2"], 0.4)
    assert figures["wall_per_floor"] == 3.0
    assert (figures["cpu_s"], figures["cpu_bound_wall_s"]) == (30.0, round(30.0 / benchmark.CPUS, 1))
    assert benchmark.busy_cpu_s() > 0
