"""The runtime wrapper's bundle edits (``Variant.in_bundle``) on a bundle of our own: no engine needed."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.lab.faults import VARIANTS, _runtime

ENGINE_FILES = {"/etc/hosts": "hosts", "/etc/resolv.conf": "resolv.conf", "/etc/hostname": "hostname"}


def _create(tmp_path: Path, fault: str) -> tuple[dict, dict[str, str]]:
    """Run *fault*'s runtime wrapper as containerd runs runc for `create`, on a bundle whose runc is `true`;
    the bundle's config.json after, and what each of the engine's name files is mounted from."""
    bundle, containers = tmp_path / "bundle", tmp_path / "data" / "containers" / "abc"
    bundle.mkdir()
    containers.mkdir(parents=True)
    (containers / "hostconfig.json").write_text(json.dumps({"NetworkMode": "default"}))
    mounts = [{"destination": dest, "type": "bind", "source": str(containers / name)}
              for dest, name in ENGINE_FILES.items()]
    (bundle / "config.json").write_text(json.dumps({"hostname": "abc", "mounts": mounts}))
    script = _runtime(None, "/proc/1/ns/net", VARIANTS[fault].in_bundle, tmp_path / "data").splitlines()
    wrapper = tmp_path / "runtime"
    wrapper.write_text("\n".join(script[:-1]) + "\n")  # all but the exec of runc: the edits are what is tested
    subprocess.run([sys.executable, str(wrapper), "--root", "/run/r", "--log-format", "json", "create",
                    "--bundle", str(bundle), "--pid-file", "p", "abc"], check=True, timeout=30)
    config = json.loads((bundle / "config.json").read_text())
    return config, {m["destination"]: m["source"] for m in config["mounts"]}


@pytest.mark.parametrize(("fault", "replaced", "content"), [
    ("hosts-stock", "/etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
    ("resolv-conf-embedded", "/etc/resolv.conf", "nameserver 127.0.0.11\n"),
])
def test_a_name_file_fault_repoints_only_its_file(tmp_path, fault, replaced, content):
    config, sources = _create(tmp_path, fault)
    assert Path(sources[replaced]).parent == tmp_path / "bundle"
    assert Path(sources[replaced]).read_text() == content
    others = {dest: source for dest, source in sources.items() if dest != replaced}
    assert others == {dest: str(tmp_path / "data" / "containers" / "abc" / name)
                      for dest, name in ENGINE_FILES.items() if dest != replaced}
    assert config["hostname"] == "abc"


def test_hostname_overridden_sets_the_uts_name_only(tmp_path):
    config, sources = _create(tmp_path, "hostname-overridden")
    assert config["hostname"] == "cf-fault-host"
    assert all(Path(source).parent.name == "abc" for source in sources.values())
