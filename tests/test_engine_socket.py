"""An engine's socket: which engine serves it, as the kernel names the process listening on it (asked before a
run starts anything beside the engine under test: a dockerd beside Podman would serve checks that do not
apply), and the client the suite talks to it with."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conformance.lab.engines.engine import EngineClient, EngineUntrusted, daemon_pid, served_by_podman
from conformance.lab.kernel.procs import comm
from conformance.lab.safety.trust import root_tool
from conformance.lab.wait import wait_for

# A process named NAME (prctl PR_SET_NAME: what /proc/PID/comm says) listening on the socket PATH.
LISTENER = """
import ctypes, socket, sys
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)
server = socket.socket(socket.AF_UNIX)
server.bind(sys.argv[2])
server.listen()
print("listening", flush=True)
while True:
    server.accept()[0].close()
"""


@pytest.mark.parametrize(("name", "podman"), [("podman", True), ("dockerd", False)])
def test_the_listening_process_names_podman(tmp_path: Path, name: str, podman: bool):
    path = tmp_path / "engine.sock"
    with subprocess.Popen([sys.executable, "-c", LISTENER, name, str(path)], stdout=subprocess.PIPE,
                          text=True) as listener:
        try:
            assert listener.stdout is not None and listener.stdout.readline() == "listening\n"
            assert served_by_podman(f"unix://{path}") is podman
        finally:
            listener.kill()


def test_nothing_listening_is_not_podman(tmp_path: Path):
    assert not served_by_podman(f"unix://{tmp_path}/none.sock")
    assert not served_by_podman("tcp://127.0.0.1:2375")


def test_the_client_never_reads_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """requests reads os.environ for proxies on every request unless trust_env is off; a thread doing so while
    pytest deletes PYTEST_CURRENT_TEST in the main thread raised KeyError (the two-host lab's start, in CI)."""
    client = EngineClient(base_url=f"unix://{tmp_path}/none.sock", version="1.41")
    client.api.trust_env = True  # what requests.Session.__init__ does
    assert client.api.trust_env is False
    seen = []
    for where in ("requests.utils", "requests.sessions"):  # sessions imported it by name
        monkeypatch.setattr(f"{where}.get_environ_proxies", lambda *a, **k: seen.append(a) or {})
    with pytest.raises(Exception):  # noqa: B017 - nothing listens; only the proxy lookup matters here
        client.ping()
    assert seen == []


@pytest.mark.skipif(os.geteuid() != 0, reason="another user's dockerd is made by root")
def test_a_socket_activated_engine_must_be_roots():
    """Behind a socket systemd holds, the dockerd naming it is the engine: it too must be root's, or another
    user's dockerd naming root's socket would be taken for the engine under test."""
    home = Path(tempfile.mkdtemp(prefix="cf-socket-"))  # in /tmp, which nobody may enter (pytest's is root's)
    try:
        home.chmod(0o755)
        path = home / "engine.sock"
        dockerd = home / "dockerd"  # a shell running this script: /proc/PID/comm says dockerd
        dockerd.write_text("#!/bin/sh\nsleep 60\n")
        dockerd.chmod(0o755)
        nobody = [root_tool("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups"]
        with subprocess.Popen([sys.executable, "-c", LISTENER, "systemd", str(path)], stdout=subprocess.PIPE,
                              text=True) as listener, \
                subprocess.Popen([*nobody, str(dockerd), "-H", f"unix://{path}"]) as other:
            try:
                assert listener.stdout is not None and listener.stdout.readline() == "listening\n"
                wait_for(lambda: comm(other.pid) == "dockerd", "the dockerd to start", timeout=5)
                with pytest.raises(EngineUntrusted, match=r"held by systemd .* runs as nobody \(uid 65534\)"):
                    daemon_pid(str(path))
            finally:
                listener.kill()
                other.kill()
    finally:
        shutil.rmtree(home, ignore_errors=True)
