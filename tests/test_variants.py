"""The fault registry, and the runtime wrapper's bundle edits (``Fault.in_bundle``) on a bundle of our own: no
engine needed."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.lab.engines.lab import Target
from conformance.lab.faults import BY_NAME, FAULTS, UNUSUAL
from conformance.lab.faults.fault import Fault
from conformance.lab.faults.wrapper import runtime_script

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
    script = runtime_script(None, "/proc/1/ns/net", BY_NAME[fault].in_bundle, tmp_path / "data").splitlines()
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


def test_every_fault_and_configuration_has_a_name_of_its_own():
    assert len(BY_NAME) == len(FAULTS) + len(UNUSUAL)


# The fields each target's lab applies (fault.py): a fault sets only those of its own target, and only a
# configuration (healthy) carries expected failures.
TARGET_FIELDS = {
    Target.ENGINE: {"options", "tools", "before_start", "after_start", "in_container", "in_bundle"},
    Target.CONFIGURED: {"options", "tools", "before_start", "after_start", "in_container", "in_bundle"},
    Target.TWO_HOSTS: {"swarm", "on_two_hosts"},
    Target.NAMESPACES: {"on_namespace"},
}
HEALTHY_FIELDS = {"expected", "expected_when"}


@pytest.mark.parametrize("fault", [*FAULTS, *UNUSUAL], ids=lambda fault: fault.name)
def test_a_fault_sets_only_what_its_target_applies(fault):
    plain = Fault("plain", "nothing changed")
    changed = {name for name in vars(plain) if name not in ("name", "why", "target")
               and getattr(fault, name) != getattr(plain, name)}
    allowed = TARGET_FIELDS[fault.target] | (HEALTHY_FIELDS if fault in UNUSUAL else set())
    assert changed, f"{fault.name} changes nothing"
    assert changed <= allowed, f"{fault.name} ({fault.target.name}) sets {sorted(changed - allowed)}"
