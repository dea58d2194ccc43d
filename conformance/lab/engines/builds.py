"""Newer Docker builds from Debian's own packages, fetched and unpacked, never installed.

``python -m conformance.lab.engines.builds trixie sid`` leaves, for each suite,

    /var/cache/docker-net-conformance/engines/<suite>/tree/usr/sbin/dockerd

with that suite's containerd, docker-proxy and docker-init beside it, to be run
as ``--engine private --dockerd PATH`` (the tree's usr/sbin and usr/bin go first
on that daemon's PATH; the host's runc serves it).  The packages come with
``apt-get download`` under an APT configuration of the cache's own (its sources
file names only that suite; the host's sources, lists and status are never read
or changed) and are unpacked with ``dpkg -x``.  A tree whose packages are already
unpacked at the versions the suite now offers is left as it is, so CI can call
this on every run.

The mirror is the one this host's APT already uses for Debian (the first
``/debian`` URI of its sources), or ``CONFORMANCE_DEBIAN_MIRROR``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CACHE = Path("/var/cache/docker-net-conformance/engines")
SUITES = ("trixie", "sid")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# docker.io's own package holds dockerd and docker-proxy; these of its dependencies are the rest of the engine.
ENGINE_PARTS = ("containerd", "tini", "tini-static")


class FetchFailed(RuntimeError):
    """An engine build could not be fetched or unpacked."""


@dataclass(frozen=True)
class Build:
    suite: str
    root: Path
    packages: dict[str, str]  # name -> version unpacked

    @property
    def dockerd(self) -> Path:
        return self.root / "usr" / "sbin" / "dockerd"


def mirror() -> str:
    """The Debian archive this host's APT uses (or CONFORMANCE_DEBIAN_MIRROR)."""
    if os.environ.get("CONFORMANCE_DEBIAN_MIRROR"):
        return os.environ["CONFORMANCE_DEBIAN_MIRROR"].rstrip("/")
    texts = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if path.suffix in (".list", ".sources") or path.name == "sources.list":
            try:
                texts.append(path.read_text())
            except OSError:
                continue
    for text in texts:
        for uri in re.findall(r"(?:^URIs:\s*|^deb\s+(?:\[[^]]*\]\s+)?)(\S+)", text, re.MULTILINE):
            if uri.rstrip("/").endswith("/debian"):
                return uri.rstrip("/")
    raise FetchFailed("no Debian archive in this host's APT sources: set CONFORMANCE_DEBIAN_MIRROR to one")


def _apt_config(suite: str, base: Path) -> Path:
    """An APT configuration for *suite* alone, every directory under *base*."""
    for sub in ("etc/apt.conf.d", "etc/preferences.d", "etc/sources.list.d", "lists/partial",
                "cache/archives/partial", "state"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    (base / "etc" / "sources.list").write_text(f"deb [signed-by={KEYRING}] {mirror()} {suite} main\n")
    (base / "status").touch()
    config = base / "apt.conf"
    config.write_text("\n".join([
        f'Dir::Etc "{base}/etc";',
        f'Dir::Etc::SourceList "{base}/etc/sources.list";',
        f'Dir::Etc::SourceParts "{base}/etc/sources.list.d";',
        f'Dir::Etc::Parts "{base}/etc/apt.conf.d";',
        f'Dir::Etc::Preferences "{base}/etc/preferences";',
        f'Dir::Etc::PreferencesParts "{base}/etc/preferences.d";',
        f'Dir::State "{base}/state";',
        f'Dir::State::Lists "{base}/lists";',
        f'Dir::State::status "{base}/status";',
        f'Dir::Cache "{base}/cache";',
        # The archive may be a snapshot older than its Release file's Valid-Until; signatures are still checked.
        'Acquire::Check-Valid-Until "false";',
        'Acquire::Languages "none";',
        'APT::Sandbox::User "root";',  # the cache is root's; _apt could not write the downloads there
        "",
    ]))
    return config


def _apt(config: Path, *args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(list(args), capture_output=True, text=True, cwd=cwd, timeout=600, check=False,
                            env={**os.environ, "APT_CONFIG": str(config), "LC_ALL": "C"})
    if result.returncode != 0:
        raise FetchFailed(f"`{' '.join(args)}` failed: {result.stderr.strip()[-2000:]}")
    return result.stdout


def _field(stanza: str, name: str) -> str:
    found = re.search(rf"^{name}: (.*)$", stanza, re.MULTILINE)
    return found.group(1) if found else ""


def packages(config: Path) -> dict[str, str]:
    """{package: candidate version}: docker.io and the parts of the engine it depends on."""
    stanza = _apt(config, "apt-cache", "show", "--no-all-versions", "docker.io")
    wanted = {"docker.io": _field(stanza, "Version")}
    depends = {re.split(r"[\s(]", alt.strip())[0] for dep in _field(stanza, "Depends").split(",")
               for alt in dep.split("|")}
    for name in ENGINE_PARTS:
        if name in depends:
            wanted[name] = _field(_apt(config, "apt-cache", "show", "--no-all-versions", name), "Version")
    return wanted


def fetch(suite: str, cache: Path = CACHE) -> Build:
    """Fetch and unpack *suite*'s docker.io, containerd and tini into ``cache/<suite>/tree``."""
    base = cache / suite
    config = _apt_config(suite, base / "apt")
    _apt(config, "apt-get", "update", "-q")
    wanted = packages(config)
    manifest = base / "tree.json"
    root = base / "tree"
    if manifest.is_file() and json.loads(manifest.read_text()) == wanted and (root / "usr/sbin/dockerd").is_file():
        return Build(suite, root, wanted)
    debs = base / "debs"
    debs.mkdir(exist_ok=True)
    for old in debs.glob("*.deb"):
        old.unlink()
    _apt(config, "apt-get", "download", *(f"{name}={version}" for name, version in wanted.items()), cwd=debs)
    staging = base / "tree.new"
    subprocess.run(["rm", "-rf", str(staging)], check=True)
    for deb in sorted(debs.glob("*.deb")):
        result = subprocess.run(["dpkg-deb", "-x", str(deb), str(staging)], capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            raise FetchFailed(f"dpkg-deb -x {deb.name} failed: {result.stderr.strip()}")
    if not (staging / "usr/sbin/dockerd").is_file():
        raise FetchFailed(f"{suite}'s docker.io has no usr/sbin/dockerd")
    subprocess.run(["rm", "-rf", str(root)], check=True)
    staging.rename(root)
    manifest.write_text(json.dumps(wanted, indent=1, sort_keys=True) + "\n")
    return Build(suite, root, wanted)


def main(argv: list[str]) -> int:
    suites = argv or list(SUITES)
    for suite in suites:
        started = time.monotonic()
        try:
            build = fetch(suite)
        except FetchFailed as exc:
            print(f"{suite}: {exc}", file=sys.stderr)
            return 1
        parts = ", ".join(f"{name} {version}" for name, version in build.packages.items())
        print(f"{suite}: {build.dockerd} ({parts}; {time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
