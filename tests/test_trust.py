"""Safe to run as root on a shared host: the suite trusts only root's engine and root's tools, sends no
credential, and keeps, loads and runs nothing from a place another user could write.

The attacks are made for real: a fake ``dockerd`` run by ``nobody`` on a socket of its own, with an
``iptables`` of its own first on its PATH; sockets and directories another user owns or may write; a Docker
config of root's full of credentials, headers and proxies, read by an engine that records what it is sent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.lab.engines import firewall
from conformance.lab.engines.engine import Engine, EngineClient, EngineUntrusted
from conformance.lab.kernel.procs import cmdline
from conformance.lab.safety import trust
from conformance.lab.wait import wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the attacks are made against root, by other users")

NOBODY = 65534
# A Docker engine as far as /_ping, /version and /info go; every request it gets is a line of its log.  Run by
# the system's python3, which nobody may execute (the suite's virtual environment may live under /root).
FAKE = """#!/usr/bin/python3
import http.server, json, socketserver, sys

VERSION = {"Components": [{"Name": "Engine", "Version": "20.10.24"}], "Version": "20.10.24", "ApiVersion": "1.41",
           "MinAPIVersion": "1.12", "Os": "linux"}
ANSWERS = {"/_ping": "OK", "/version": VERSION, "/info": {"Driver": "overlay2", "CgroupVersion": "2"},
           "/build": {"stream": "built"}, "/images/create": {"status": "pulled"},
           "/containers/create": {"Id": "0" * 64, "Warnings": []}}


class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with open(sys.argv[2], "a") as log:
            log.write(json.dumps({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                  "body": body.decode(errors="replace")}) + "\\n")
        path = "/" + self.path.split("?")[0].split("/", 2)[-1] if self.path.startswith("/v1.") else self.path
        path = path.split("?")[0]
        found = ANSWERS.get(path)
        data = (found if isinstance(found, str) else json.dumps(found)).encode() if found is not None else b"{}"
        self.send_response(201 if path == "/containers/create" else 200 if found is not None else 404)
        self.send_header("Content-Type", "text/plain" if path == "/_ping" else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_HEAD = answer

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        request, _ = super().get_request()
        return request, ("unix", 0)


server = Server(sys.argv[1], Handler)
print("listening", flush=True)
server.serve_forever()
"""
# What the fake's PATH offers root: programs that leave a mark when anyone runs them.
MARKING = "#!/bin/sh\necho \"$0 $*\" >> {marks}\necho 'iptables v1.8.9 (legacy)'\n"


@dataclass
class Fake:
    url: str
    socket: Path
    requests: Path  # one JSON line per request it got
    marks: Path  # one line per program of its PATH that ran

    def asked(self) -> list[dict]:
        return [json.loads(line) for line in self.requests.read_text().splitlines()] if self.requests.exists() else []


def _serve(home: Path, socket_path: Path, as_nobody: bool, env: dict[str, str]) -> subprocess.Popen:
    script = home / "dockerd"  # the kernel names the process after its script: /proc/PID/comm says dockerd
    script.write_text(FAKE)
    script.chmod(0o755)
    nobody = [trust.root_tool("setpriv"), f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    prefix = nobody if as_nobody else []
    process = subprocess.Popen([*prefix, str(script), str(socket_path), str(home / "requests.jsonl")],
                               stdout=subprocess.PIPE, text=True, env=env, cwd=home)
    assert process.stdout is not None and process.stdout.readline() == "listening\n"
    return process


@pytest.fixture
def nobodys_dockerd() -> Iterator[Fake]:
    """A fake dockerd run by nobody on a socket in a directory of nobody's, its PATH a directory of programs
    of nobody's that mark what ran them (iptables, iptables-save, ...)."""
    home = Path(tempfile.mkdtemp(prefix="cf-trust-"))
    try:
        tools = home / "bin"
        tools.mkdir()
        marks = home / "marks"
        for name in ("iptables", "iptables-save", "iptables-nft", "iptables-nft-save", "iptables-legacy",
                     "iptables-legacy-save", "nft"):
            (tools / name).write_text(MARKING.format(marks=marks))
            (tools / name).chmod(0o755)
        for path in (home, tools, *tools.iterdir()):
            os.chown(path, NOBODY, NOBODY)
        socket_path = home / "docker.sock"
        process = _serve(home, socket_path, True, {"PATH": str(tools)})
        try:
            yield Fake(f"unix://{socket_path}", socket_path, home / "requests.jsonl", marks)
        finally:
            process.kill()
            process.wait()
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def roots_fake(tmp_path: Path) -> Iterator[Fake]:
    """The same fake, run by root in a directory of root's: to see what the suite's client sends an engine."""
    socket_path = tmp_path / "docker.sock"
    process = _serve(tmp_path, socket_path, False, {"PATH": os.defpath})
    try:
        yield Fake(f"unix://{socket_path}", socket_path, tmp_path / "requests.jsonl", tmp_path / "marks")
    finally:
        process.kill()
        process.wait()


def test_nobodys_dockerd_is_refused_by_its_owner_and_never_asked_anything(nobodys_dockerd: Fake):
    """The attack: before, the suite took it for the engine under test (its process is named dockerd), ran
    as root the iptables first on its PATH to learn the variant, and would have sent it root's credentials."""
    with pytest.raises(EngineUntrusted) as refused:
        Engine.connect(nobodys_dockerd.url).iptables_variant  # noqa: B018 - the attack's step, had it connected
    message = str(refused.value)
    assert "nobody (uid 65534)" in message and "not root" in message, message
    assert nobodys_dockerd.asked() == [], "the suite sent requests to an engine it does not trust"
    assert not nobodys_dockerd.marks.exists(), f"root ran the fake's programs: {nobodys_dockerd.marks.read_text()}"


def test_a_daemons_path_is_read_never_run(tmp_path: Path):
    """Which iptables a daemon uses is read from what its PATH's iptables is: a link's names, a shim's exec;
    nothing found there runs, not even a FIFO blocks the read, and root's own programs are what runs."""
    marks = tmp_path / "marks"
    cases = {
        "marking": (MARKING.format(marks=marks), None),
        "legacy-shim": (f'#!/bin/sh\nexec {shutil.which("iptables-legacy")} "$@"\n', "legacy"),
        "host-shim": (f'#!/bin/sh\nip link show >/dev/null\nexec {shutil.which("iptables")} "$@"\n',
                      firewall.variant_on_path()),
        "fifo": (None, None),
    }
    for name, (script, expected) in cases.items():
        tools = tmp_path / name
        tools.mkdir()
        if script is None:
            os.mkfifo(tools / "iptables", 0o755)
        else:
            (tools / "iptables").write_text(script)
            (tools / "iptables").chmod(0o755)
        with subprocess.Popen(["sleep", "60"], env={"PATH": f"{tools}:/usr/bin:/bin"}) as daemon:
            try:
                wait_for(lambda: cmdline(daemon.pid) == ["sleep", "60"], "the daemon to exec", timeout=5)
                assert firewall.daemon_variant(daemon.pid) == expected, name
            finally:
                daemon.kill()
    assert not marks.exists(), f"a program of the daemon's PATH ran: {marks.read_text()}"


def test_root_tools_come_from_root_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A directory others may write is passed over, whatever it holds."""
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    (open_dir / "iptables").write_text("#!/bin/sh\n")
    (open_dir / "iptables").chmod(0o755)
    monkeypatch.setattr(trust, "ROOT_PATH", (str(open_dir), "/usr/sbin"))
    assert trust.root_tool("iptables") == "/usr/sbin/iptables"
    monkeypatch.setattr(trust, "ROOT_PATH", (str(open_dir),))
    with pytest.raises(FileNotFoundError):
        trust.root_tool("iptables")


def _listen(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    return server


def test_a_socket_another_user_could_replace_is_refused(tmp_path: Path):
    """Root listening is not enough: the socket, and every directory on its way, links included, must be root's
    alone, or another user could put a listener of theirs there between two of the suite's connections."""
    tmp_path.chmod(0o755)
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)  # writable by everyone, not sticky
    owned = tmp_path / "owned"
    owned.mkdir()
    os.chown(owned, NOBODY, NOBODY)
    plain = tmp_path / "plain"
    plain.mkdir()
    cases = {
        open_dir / "engine.sock": "writable by others",
        owned / "engine.sock": "owned by nobody (uid 65534)",
        plain / "nobodys.sock": "owned by nobody (uid 65534)",
    }
    servers = [_listen(path) for path in cases]
    os.chown(plain / "nobodys.sock", NOBODY, NOBODY)
    (owned / "link.sock").symlink_to(plain / "fine.sock")
    os.lchown(owned / "link.sock", NOBODY, NOBODY)
    cases[owned / "link.sock"] = "owned by nobody (uid 65534)"
    servers.append(_listen(plain / "fine.sock"))
    try:
        for path, reason in cases.items():
            with pytest.raises(EngineUntrusted, match=re.escape(reason)):
                Engine.connect(f"unix://{path}")
        assert trust.unsafe_path(plain / "fine.sock") is None
        assert trust.unsafe_path(Path("/tmp")) is not None, "a directory everyone may write is not root's alone"
        assert trust.unsafe_path(tmp_path) is None, "a root directory in sticky /tmp is"
    finally:
        for server in servers:
            server.close()


def test_the_client_sends_no_credential_header_or_proxy(roots_fake: Fake, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch):
    """Root's Docker config is the docker CLI's: before, docker-py sent every credential there with each build
    (X-Registry-Config: the probe image's build sent them to whatever engine it tested), one with each pull,
    its HttpHeaders with every request, and put its proxies into every container's environment."""
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({
        "auths": {"https://index.docker.io/v1/": {"auth": "cm9vdDpodWItczNjcmV0"},  # root:hub-s3cret
                  "registry.example": {"auth": "cm9vdDpyZWctczNjcmV0"}},
        "HttpHeaders": {"X-Meta-Token": "header-s3cret"},
        "proxies": {"default": {"httpProxy": "http://proxy-user:proxy-s3cret@proxy.example:3128"}},
    }))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    client = EngineClient(base_url=roots_fake.url, version="1.41")
    try:
        with tempfile.TemporaryFile() as context:
            list(client.api.build(fileobj=context, custom_context=True, tag="cf-probe:test"))
        client.api.pull("registry.example/probe", tag="1")
        client.api.create_container("cf-probe:test", command="true")
    finally:
        client.close()
    asked = roots_fake.asked()
    assert [r["path"].split("?")[0].rsplit("/", 2)[-2:] for r in asked] == [
        ["v1.41", "build"], ["images", "create"], ["containers", "create"]], asked
    sent = json.dumps(asked)
    for header in ("X-Registry-Config", "X-Registry-Auth", "X-Meta-Token"):
        assert header.lower() not in sent.lower(), f"{header} was sent: {asked}"
    assert "s3cret" not in sent, f"a secret of root's Docker config was sent: {asked}"


def test_private_directories_are_roots_and_0700(tmp_path: Path):
    made = trust.private_dir(tmp_path / "a" / "b")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700 and stat.S_IMODE(made.parent.stat().st_mode) == 0o700
    older = tmp_path / "older"
    older.mkdir(mode=0o755)
    assert stat.S_IMODE(trust.private_dir(older).stat().st_mode) == 0o700, "an earlier version's 0755 is narrowed"
    (tmp_path / "link").symlink_to(older)
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    owned = tmp_path / "owned"
    owned.mkdir(mode=0o700)
    os.chown(owned, NOBODY, NOBODY)
    for path, reason in ((tmp_path / "link", "not a directory of its own"), (open_dir, "writable by others"),
                         (owned, "owned by nobody"), (owned / "below", "owned by nobody")):
        with pytest.raises(trust.Untrusted, match=reason):
            trust.private_dir(path)
    assert stat.S_IMODE(older.stat().st_mode) == 0o700


def test_a_tree_whose_executables_changed_is_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fetched engine tree's executables are recorded at unpack; one changed or added refuses the engine."""
    from conformance.lab.engines import builds
    from conformance.lab.engines.engine import EngineUnavailable
    from conformance.lab.engines.private import PrivateEngine
    from conformance.lab.safety.identity import Run

    monkeypatch.setattr(builds, "CACHE", tmp_path / "engines")
    root = tmp_path / "engines" / "sid" / "tree"
    (root / "usr" / "sbin").mkdir(parents=True)
    dockerd = root / "usr" / "sbin" / "dockerd"
    dockerd.write_text("#!/bin/sh\n")
    dockerd.chmod(0o755)
    (root / "usr" / "sbin" / "docker-proxy").symlink_to("dockerd")
    engine = PrivateEngine(Run(), dockerd=dockerd)
    with pytest.raises(EngineUnavailable, match="no record of its executables' digests"):
        engine.binary()
    (root.parent / builds.DIGESTS).write_text(json.dumps(builds.digests(root)))
    assert engine.binary() == str(dockerd)
    planted = root / "usr" / "sbin" / "iptables"  # first on the engine's PATH
    planted.write_text("#!/bin/sh\n")
    planted.chmod(0o755)
    with pytest.raises(EngineUnavailable, match=r"1 executables differ .*usr/sbin/iptables"):
        engine.binary()
    planted.unlink()
    dockerd.write_text("#!/bin/sh\necho changed\n")
    with pytest.raises(EngineUnavailable, match="usr/sbin/dockerd"):
        engine.binary()


def test_credentials_are_masked_wherever_the_suite_records():
    from conformance.lab.safety import redact

    argv = ["--log-driver=splunk", "--log-opt=splunk-token=tok3n", "--log-opt", "logentries-token=tok3n",
            "--log-opt", "splunk-url=https://user:s3cret@splunk.example:8088", "--registry-mirror",
            "https://user:s3cret@mirror.example", "--tlskey", "/etc/docker/key.pem", "--api-token=tok3n",
            "--log-opt=elastic-password=s3cret", "-H", "unix:///run/docker.sock", "--ip-masq=false"]
    assert redact.argv(argv) == [
        "--log-driver=splunk", "--log-opt=splunk-token=***", "--log-opt", "logentries-token=***",
        "--log-opt", "splunk-url=https://***@splunk.example:8088", "--registry-mirror", "https://***@mirror.example",
        "--tlskey", "***", "--api-token=***", "--log-opt=elastic-password=***", "-H", "unix:///run/docker.sock",
        "--ip-masq=false"]
    line = "cannot connect to tcp://user:s3cret@127.0.0.1:1?token=tok3n&x=1: refused"
    assert redact.text(line) == "cannot connect to tcp://***@127.0.0.1:1?token=***&x=1: refused"
    assert redact.text(redact.text(line)) == redact.text(line), "masking twice changes nothing"
    assert redact.text("no Docker engine answers at unix:///var/run/docker.sock") == (
        "no Docker engine answers at unix:///var/run/docker.sock")


def test_evidence_of_the_hosts_engine_keeps_to_the_suites_own():
    """For the checks to call where the engine under test is the host's (conformance/checks: nat-table,
    docker-network-inspect-bridge, resolv-conf and the host's link and namespace listings)."""
    from conformance.lab.safety import redact

    dump = "\n".join([
        "# Generated by iptables-nft-save v1.8.9", "*nat", ":PREROUTING ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]",
        ":DOCKER - [0:0]", ":KUBE-SERVICES - [0:0]",
        "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
        "-A PREROUTING -j KUBE-SERVICES",
        "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE",
        "-A DOCKER -i docker0 -j RETURN",
        "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 20123 -j DNAT --to-destination 172.17.0.2:80",
        "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 5432 -j DNAT --to-destination 172.17.0.9:5432",
        "-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -j KUBE-SVC-X", "COMMIT", ""])
    assert redact.nat_evidence(dump, ["172.17.0.2", 20123]).splitlines() == [
        "*nat", ":PREROUTING ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]", ":DOCKER - [0:0]",
        "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
        "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 20123 -j DNAT --to-destination 172.17.0.2:80", "COMMIT"]
    assert "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE" in redact.nat_evidence(
        dump, ["172.17.0.0/16", "docker0"]) and "5432" not in redact.nat_evidence(dump, ["172.17.0.0/16"])
    listing = {"nftables": [{"metainfo": {}}, {"table": {"family": "ip", "name": "docker-bridges"}},
                            {"chain": {"family": "ip", "table": "docker-bridges", "name": "nat-prerouting"}},
                            {"chain": {"family": "ip", "table": "docker-bridges", "name": "other"}},
                            {"rule": {"family": "ip", "table": "docker-bridges", "chain": "nat-prerouting",
                                      "expr": [{"match": {"right": 20123}}, {"dnat": {"addr": "172.17.0.2"}}]}},
                            {"rule": {"family": "ip", "table": "docker-bridges", "chain": "nat-prerouting",
                                      "expr": [{"match": {"right": 5432}}, {"dnat": {"addr": "172.17.0.9"}}]}}]}
    kept = json.loads(redact.nat_evidence(json.dumps(listing), ["172.17.0.2"]))["nftables"]
    assert [next(iter(e)) for e in kept] == ["metainfo", "table", "chain", "rule"] and "5432" not in json.dumps(kept)
    inspect = {"Name": "bridge", "Containers": {"a": {"Name": "cfab12cd-web", "IPv4Address": "172.17.0.2/16"},
                                                "b": {"Name": "payroll-db", "IPv4Address": "172.17.0.9/16"}}}
    shown = redact.inspect_evidence(inspect, "cfab12cd")
    assert list(shown["Containers"]) == ["a"] and shown["ContainersOfOthers"] == 1 and len(inspect["Containers"]) == 2
    resolv = "# by the host\nnameserver 10.0.0.2\nsearch corp.internal example.com\noptions edns0\n"
    assert redact.resolv_conf_evidence(resolv) == "nameserver 10.0.0.2\nsearch ***\noptions ***\n"
    assert redact.names_evidence(["lo", "eth0", "cfab12cdh0", "cni-1234"], ["cfab12cd", "lo"]) == {
        "own": ["cfab12cdh0", "lo"], "others": 2}


@pytest.mark.parametrize("uri", ["http://deb.debian.org/debian", "https://snapshot.debian.org/archive/debian/20250101T000000Z"])
def test_a_debian_mirror_is_an_http_url(uri: str, monkeypatch: pytest.MonkeyPatch):
    from conformance.lab.engines import builds

    monkeypatch.setenv("CONFORMANCE_DEBIAN_MIRROR", uri + "/")
    assert builds.mirror() == uri


@pytest.mark.parametrize("uri", ["file:///srv/debian", "http://deb.debian.org/debian sid main\ndeb [trusted=yes] "
                                 "http://evil.example/debian", "http://deb.debian.org/debian\tsid", "ftp://x/debian",
                                 "http:///debian", "[trusted=yes] http://evil.example/debian"])
def test_a_debian_mirror_that_is_not_an_http_url_is_refused(uri: str, monkeypatch: pytest.MonkeyPatch):
    """A mirror goes into a sources line: whitespace would take options, suites or a second line along."""
    from conformance.lab.engines import builds

    monkeypatch.setenv("CONFORMANCE_DEBIAN_MIRROR", uri)
    with pytest.raises(builds.FetchFailed, match="not an http"):
        builds.mirror()


def test_release_validity_is_checked_except_on_a_dated_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture):
    from conformance.lab.engines import builds

    monkeypatch.setenv("CONFORMANCE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
    assert "Check-Valid-Until" not in builds._apt_config("sid", tmp_path / "live").read_text()
    snapshot = "https://snapshot.debian.org/archive/debian/20250101T000000Z"
    monkeypatch.setenv("CONFORMANCE_DEBIAN_MIRROR", snapshot)
    config = builds._apt_config("sid", tmp_path / "snapshot").read_text()
    assert 'Acquire::Check-Valid-Until "false";' in config and f"// {snapshot} is a dated snapshot" in config
    assert "is a dated snapshot" in caplog.text


def test_a_run_against_nobodys_dockerd_is_one_line_naming_its_owner(tmp_path: Path, nobodys_dockerd: Fake):
    """The whole run: one problem line naming the owner, the engine's checks error with it, nothing of the
    fake's PATH runs (``--engine auto`` starts no substitute for an engine that answers)."""
    from test_bad_environments import assert_one_line, run

    completed, report = run(tmp_path, "-k", "defaults or netns/veth", env={"DOCKER_HOST": nobodys_dockerd.url})
    assert_one_line(completed, report, f"the engine at {nobodys_dockerd.url} is not root's")
    assert "runs as nobody (uid 65534), not root" in report["run_info"]["problems"][0]
    assert "engine_private" not in report["run_info"], "a substitute was tested in its place"
    assert not nobodys_dockerd.marks.exists(), f"root ran the fake's programs: {nobodys_dockerd.marks.read_text()}"


@pytest.mark.engine
def test_a_private_engines_secrets_are_in_no_file_of_the_report(tmp_path: Path):
    """A daemon whose command line carries a log driver's token and a URL with a password (dockerd refuses
    credentials in --registry-mirror URLs, so a log driver's URL carries them here): run_info.daemon_argv
    records the options with those masked, and no file of the report holds either secret."""
    from test_bad_environments import run

    options = ["--log-driver=splunk", "--log-opt=splunk-token=tok3n-s3cret", "--log-opt",
               "splunk-url=https://user:s3cret@splunk.example:8088", "--log-opt=splunk-verify-connection=false"]
    completed, report = run(tmp_path, "--engine", "private", *(f"--daemon-opt={o}" for o in options),
                            "-k", "defaults/bridge-inspect or bridge/default-mode")
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert [c["status"] for c in report["claims"]] == ["passed", "passed"], "a container did not start"
    assert report["run_info"]["daemon_argv"][-5:] == [
        "--log-driver=splunk", "--log-opt=splunk-token=***", "--log-opt", "splunk-url=https://***@splunk.example:8088",
        "--log-opt=splunk-verify-connection=false"]
    files = [p for p in (tmp_path / "r").rglob("*") if p.is_file()]
    leaked = [str(p) for p in files if b"s3cret" in p.read_bytes()]
    assert len(files) > 3 and not leaked, leaked


def test_release_files_past_their_valid_until_are_fetched_again_with_their_expiry_unchecked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The dated snapshot this project's machines reach under deb.debian.org's own name serves sid's Release files
    past their Valid-Until: apt-get update is tried once more with the expiry (never the signatures) unchecked,
    and the configuration says why; any other failure is raised as it was."""
    from conformance.lab.engines import builds

    config = tmp_path / "apt.conf"
    config.write_text('Dir::Etc "x";\n')
    calls = []

    def apt(conf: Path, *args: str, **kwargs: object) -> str:
        calls.append(args)
        if "Check-Valid-Until" not in conf.read_text():
            raise builds.FetchFailed("E: Release file for http://deb.debian.org/debian/dists/sid/InRelease is expired "
                                     "(invalid since 31d)")
        return ""

    monkeypatch.setattr(builds, "_apt", apt)
    builds.update(config)
    assert len(calls) == 2 and 'Acquire::Check-Valid-Until "false";' in config.read_text()
    assert "signatures are still checked" in config.read_text()
    monkeypatch.setattr(builds, "_apt", lambda *args, **kwargs: (_ for _ in ()).throw(
        builds.FetchFailed("E: Unable to locate package docker.io")))
    with pytest.raises(builds.FetchFailed, match="Unable to locate"):
        builds.update(tmp_path / "apt.conf")
