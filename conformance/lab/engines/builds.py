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

The mirror is the one this host's APT already uses for Debian (the first http(s)
``/debian`` URI of its sources), or ``CONFORMANCE_DEBIAN_MIRROR``, an http(s) URL.
Release files are checked as APT checks them, signatures and validity both, except
for a dated snapshot (``snapshot.debian.org/archive/debian/20250101T000000Z``),
whose Release files are expired by design: there only the validity check is off,
and the configuration and the log say so.

The cache is root's and 0700 (safety/trust.py's ``private_dir``), and the sha256
of every executable of an unpacked tree is recorded beside it when it is unpacked
(``tree.sha256.json``) and checked before a private engine runs it (``verify``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ..safety.identity import CACHE_DIR
from ..safety.trust import Untrusted, private_dir, sha256

CACHE = CACHE_DIR / "engines"
SUITES = ("trixie", "sid")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# docker.io's own package holds dockerd and docker-proxy; these of its dependencies are the rest of the engine.
ENGINE_PARTS = ("containerd", "tini", "tini-static")
# A path segment naming the moment a snapshot archive was taken (snapshot.debian.org's form).
SNAPSHOT = re.compile(r"^\d{8}T\d{6}Z$")
DIGESTS = "tree.sha256.json"  # beside each tree: {path in the tree: sha256, or "-> target" for a symlink}
log = logging.getLogger("conformance")


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


def _http_url(uri: str) -> bool:
    """Whether *uri* is an http(s) URL with a host and no whitespace: what a sources line may name without
    taking other fields (options, suites, a second line) along."""
    parsed = urlparse(uri)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc) and not re.search(r"[\s\x00-\x1f\x7f]", uri)


def is_snapshot(uri: str) -> bool:
    """Whether *uri* is a dated snapshot of an archive, whose Release files are past their Valid-Until."""
    return any(SNAPSHOT.match(segment) for segment in urlparse(uri).path.split("/"))


def mirror() -> str:
    """The Debian archive this host's APT uses (or CONFORMANCE_DEBIAN_MIRROR), an http(s) URL."""
    chosen = os.environ.get("CONFORMANCE_DEBIAN_MIRROR")
    if chosen:
        if not _http_url(chosen):
            raise FetchFailed(f"CONFORMANCE_DEBIAN_MIRROR={chosen!r}: not an http(s) URL without whitespace")
        return chosen.rstrip("/")
    texts = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if path.suffix in (".list", ".sources") or path.name == "sources.list":
            try:
                texts.append(path.read_text())
            except OSError:
                continue
    for text in texts:
        for uri in re.findall(r"(?:^URIs:\s*|^deb\s+(?:\[[^]]*\]\s+)?)(\S+)", text, re.MULTILINE):
            if uri.rstrip("/").endswith("/debian") and _http_url(uri):
                return uri.rstrip("/")
    raise FetchFailed("no http(s) Debian archive in this host's APT sources: set CONFORMANCE_DEBIAN_MIRROR to one")


def _apt_config(suite: str, base: Path) -> Path:
    """An APT configuration for *suite* alone, every directory under *base*.  Release files are checked for
    validity (Valid-Until) except on a dated snapshot, where the configuration says why."""
    for sub in ("etc/apt.conf.d", "etc/preferences.d", "etc/sources.list.d", "lists/partial",
                "cache/archives/partial", "state"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    archive = mirror()
    (base / "etc" / "sources.list").write_text(f"deb [signed-by={KEYRING}] {archive} {suite} main\n")
    (base / "status").touch()
    validity = []
    if is_snapshot(archive):
        log.warning("%s is a dated snapshot: its Release files are not checked for expiry (Valid-Until), only "
                    "for their signatures", archive)
        validity = [f"// {archive} is a dated snapshot, whose Release files are past their Valid-Until by design:",
                    "// their signatures are still checked, their expiry is not.",
                    'Acquire::Check-Valid-Until "false";']
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
        *validity,
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


def update(config: Path) -> None:
    """``apt-get update``; when the archive answers with Release files past their Valid-Until, once more with
    their expiry unchecked, saying so in the configuration and the log (their signatures are still checked).  A
    dated snapshot reached under the archive's own name (this project's machines reach one so: its sid and
    experimental are past their Valid-Until) cannot be told from its URL."""
    try:
        _apt(config, "apt-get", "update", "-q")
    except FetchFailed as exc:
        if "is expired" not in str(exc):
            raise
        log.warning("%s: the archive serves Release files past their Valid-Until (a dated snapshot, or a stale "
                    "mirror): their expiry is not checked, only their signatures", config)
        with config.open("a") as conf:
            conf.write("// The archive served Release files past their Valid-Until (a dated snapshot, or a stale\n"
                       "// mirror): their signatures are still checked, their expiry is not.\n"
                       'Acquire::Check-Valid-Until "false";\n')
        _apt(config, "apt-get", "update", "-q")


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
    """Fetch and unpack *suite*'s docker.io, containerd and tini into ``cache/<suite>/tree``, and record its
    executables' digests; a tree already unpacked at those versions is kept when it still matches them."""
    base = cache / suite
    try:
        for directory in (cache.parent, cache, base):
            private_dir(directory)
    except Untrusted as exc:
        raise FetchFailed(str(exc)) from None
    config = _apt_config(suite, base / "apt")
    update(config)
    wanted = packages(config)
    manifest = base / "tree.json"
    root = base / "tree"
    if manifest.is_file() and json.loads(manifest.read_text()) == wanted and (root / "usr/sbin/dockerd").is_file():
        try:
            verify(root)
        except FetchFailed as exc:
            log.warning("unpacking %s again: %s", suite, exc)
        else:
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
    (base / DIGESTS).unlink(missing_ok=True)
    staging.rename(root)
    (base / DIGESTS).write_text(json.dumps(digests(root), indent=1, sort_keys=True) + "\n")
    manifest.write_text(json.dumps(wanted, indent=1, sort_keys=True) + "\n")
    return Build(suite, root, wanted)


def digests(root: Path) -> dict[str, str]:
    """What can run from the tree *root*: the sha256 of each executable file, and each symlink's target
    (one could lead anywhere), by path in the tree."""
    found = {}
    for path in sorted(root.rglob("*")):
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            found[path.relative_to(root).as_posix()] = f"-> {os.readlink(path)}"
        elif stat.S_ISREG(mode) and mode & 0o111:
            found[path.relative_to(root).as_posix()] = sha256(path)
    return found


def is_build(root: Path) -> bool:
    """Whether *root* is a tree this module unpacked (``CACHE/<suite>/tree``), which verify() must pass."""
    return root.name == "tree" and root.resolve().parent.parent == CACHE.resolve()


def verify(root: Path) -> None:
    """FetchFailed unless the tree *root*'s executables are those recorded when it was unpacked: none
    changed, none added, none gone (a program added to usr/sbin would come first on its daemon's PATH)."""
    try:
        recorded = json.loads((root.parent / DIGESTS).read_text())
    except (OSError, ValueError) as exc:
        raise FetchFailed(f"{root}: no record of its executables' digests ({exc}); fetch it again "
                          f"(python -m conformance.lab.engines.builds {root.parent.name})") from None
    found = digests(root)
    differ = sorted(set(found) ^ set(recorded) | {p for p in found.keys() & recorded.keys() if found[p] != recorded[p]})
    if differ:
        raise FetchFailed(f"{root}: {len(differ)} executables differ from those unpacked ({', '.join(differ[:5])}"
                          f"{', ...' if len(differ) > 5 else ''}); fetch it again "
                          f"(python -m conformance.lab.engines.builds {root.parent.name})")


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
