"""The runtime faults' bundle edits (``Variant.in_bundle``), applied to a bundle of our own, no engine needed."""

import json
import os
from pathlib import Path

from conformance.lab.variants import _bundle_edits


def _bundle(tmp_path: Path) -> Path:
    config = {"hostname": "0123456789ab", "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/etc/hosts", "type": "bind", "source": "/var/lib/docker/containers/x/hosts"},
        {"destination": "/etc/resolv.conf", "type": "bind", "source": "/var/lib/docker/containers/x/resolv.conf"},
    ]}
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


def _create(bundle: Path, edits: dict[str, str], *runc_args: str) -> dict:
    """What the runtime does before it execs runc with *runc_args*; the bundle's config.json after."""
    exec(_bundle_edits(edits), {"args": list(runc_args), "os": os, "json": json})
    return json.loads((bundle / "config.json").read_text())


def test_bundle_edits_replace_a_bind_mounted_file_and_the_hostname(tmp_path):
    bundle = _bundle(tmp_path)
    config = _create(bundle, {"/etc/hosts": "127.0.0.1\tlocalhost\n", "hostname": "other"},
                     "--root", "/run/r", "--log-format", "json", "create", "--bundle", str(bundle), "--pid-file",
                     "p", "id")
    mounts = {m["destination"]: m["source"] for m in config["mounts"]}
    assert config["hostname"] == "other"
    assert Path(mounts["/etc/hosts"]).parent == bundle
    assert Path(mounts["/etc/hosts"]).read_text() == "127.0.0.1\tlocalhost\n"
    assert mounts["/etc/resolv.conf"] == "/var/lib/docker/containers/x/resolv.conf", "an unnamed file was changed"


def test_bundle_edits_leave_every_other_runc_command_alone(tmp_path):
    bundle = _bundle(tmp_path)
    before = (bundle / "config.json").read_text()
    _create(bundle, {"hostname": "other"}, "--root", "/run/r", "start", "id")
    assert (bundle / "config.json").read_text() == before
