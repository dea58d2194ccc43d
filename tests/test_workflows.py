"""The CI workflows: actionlint when it is installed, and the structure the fleet relies on."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

WORKFLOWS = sorted((Path(__file__).resolve().parent.parent / ".github" / "workflows").glob("*.yml"))


@pytest.mark.skipif(shutil.which("actionlint") is None, reason="actionlint is not installed (it is a Go binary: "
                    "https://github.com/rhysd/actionlint; neither PyPI nor Debian 12 ship a prebuilt one)")
def test_workflows_pass_actionlint():
    completed = subprocess.run(["actionlint", *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout


def test_fleet_runs_a_matrix_of_self_hosted_runners_then_merges_and_diffs():
    fleet = yaml.safe_load((WORKFLOWS[0].parent / "fleet.yml").read_text())
    check, matrix = fleet["jobs"]["check"], fleet["jobs"]["matrix"]
    assert check["runs-on"][:2] == ["self-hosted", "linux"] and "${{ matrix.host }}" in check["runs-on"]
    assert check["strategy"]["matrix"]["host"] and check["strategy"]["fail-fast"] is False
    assert matrix["needs"] == "check" and matrix["if"] == "always()"
    script = "\n".join(step.get("run", "") for step in matrix["steps"])
    assert "python -m conformance merge" in script and "python -m conformance diff" in script
