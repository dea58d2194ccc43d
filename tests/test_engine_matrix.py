"""The matrix command's engine names and the merge's differences-first layout (no root, no engine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.commands.matrix import PODMAN_EXPECTATIONS, plan
from conformance.reports.matrix import Host, differing, markdown, rows


def test_engine_specs_become_suite_arguments(tmp_path):
    tree = tmp_path / "sid" / "tree" / "usr" / "sbin"
    tree.mkdir(parents=True)
    (tree / "dockerd").write_text("#!/bin/sh\n")
    (tree / "dockerd").chmod(0o755)
    runs = plan(["system", "podman", str(tree / "dockerd"), str(tree / "dockerd"), "unix:///run/podman/podman.sock"])
    assert [(r.name, r.suite_args) for r in runs] == [
        ("system", ["--engine", "system"]),
        ("podman", ["--engine", "podman", "--expectations", str(PODMAN_EXPECTATIONS)]),
        ("dockerd-sid", ["--dockerd", str(tree / "dockerd")]),
        ("dockerd-sid-2", ["--dockerd", str(tree / "dockerd")]),
        ("run-podman-podman-sock", ["--engine", "system"]),
    ]
    assert runs[-1].engine.docker_host == "unix:///run/podman/podman.sock"
    with pytest.raises(ValueError, match="not an engine name"):
        plan(["docker29"])


def _host(label: str, statuses: dict[str, str]) -> Host:
    return Host(label, Path("."), {cid: {"id": cid, "topic": cid.split("/")[0], "status": status,
                                         "message": "" if status == "passed" else f"{label}: why",
                                         "evidence": [], "statement": ""} for cid, status in statuses.items()})


def test_the_claims_that_differ_come_first_once_with_why():
    same = {"netns/a": "passed", "dns/b": "passed"}
    columns = [_host("docker", {**same, "ports/c": "passed"}), _host("podman", {**same, "ports/c": "failed"})]
    assert differing(columns) == ["ports/c"]
    assert list(rows(columns).items()) == [("where the 2 differ (1)", ["ports/c"]), ("dns", ["dns/b"]),
                                           ("netns", ["netns/a"])]
    text = markdown(columns)
    assert "- `ports/c`: 1 passed; 2 failed: podman: why" in text
    assert text.count("`ports/c`") == 2  # its row, and its line under "Why they differ"


def test_podmans_expectations_name_catalog_claims_and_only_podman():
    from conformance.catalog import catalog
    from conformance.plugin import expectations

    known = expectations.load(PODMAN_EXPECTATIONS, catalog().claims)
    assert known.when == {"engine_product": "podman"} and known.expected
