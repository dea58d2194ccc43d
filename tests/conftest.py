"""Fixtures of the self-test session: the system engine, an engine that answers but cannot be used, and
``--no-skips``, with which bin/selftest fails a session in which any test skipped."""

from __future__ import annotations

import http.server
import json
import socketserver
import threading
from pathlib import Path
from typing import ClassVar

import docker
import pytest
from session_engine import session_engine

from conformance.lab.engines.engine import DEFAULT_HOST, docker_host

# pytester: tests/test_plugin.py runs the plugin on demo checks in-process; conformance.plugin.markers: the checks'
# @claims marker, which tests/test_catalog.py meets when it imports them.
pytest_plugins = ("pytester", "conformance.plugin.markers")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--no-skips", action="store_true",
                     help="fail the session if any test skipped (bin/selftest: it installs and starts everything "
                          "a test needs, so a skip there is a gap, not an excuse)")


@pytest.fixture(scope="session")
def system_engine(tmp_path_factory: pytest.TempPathFactory) -> docker.DockerClient:
    """The engine at DOCKER_HOST, as a user's host has one (tests/session_engine.py): the one that answers,
    left as it was, or, where nothing answers at the default socket, a plain dockerd for this session."""
    url = docker_host()
    log = tmp_path_factory.mktemp("system-engine") / "dockerd.log"
    # Only the default socket gets a plain dockerd: a DOCKER_HOST set elsewhere names an engine the user runs.
    with session_engine(url, ["dockerd"] if url == DEFAULT_HOST else None, log):
        client = docker.DockerClient(base_url=url)
        try:
            yield client
        finally:
            client.close()


class _UnknownEngine(http.server.BaseHTTPRequestHandler):
    """Answers the Docker API's ping and version as an engine the suite does not know, from a process that
    is no dockerd: what Podman's API service is to the suite today."""

    VERSION: ClassVar[dict] = {"Components": [{"Name": "Unknown Engine", "Version": "1.0"}], "Version": "1.0",
                               "ApiVersion": "1.41", "MinAPIVersion": "1.24", "Os": "linux"}

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        body = b"OK" if path.endswith("/_ping") else json.dumps(self.VERSION).encode() \
            if path.endswith("/version") else None
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "text/plain" if path.endswith("/_ping") else "application/json")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args) -> None:
        pass


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        request, _ = super().get_request()
        return request, ("unix", 0)  # http.server logs and formats a (host, port) peer


@pytest.fixture
def unusable_engine(tmp_path: Path) -> str:
    """The URL of something that answers the Docker API but that the suite cannot use."""
    path = tmp_path / "unknown-engine.sock"
    with _UnixServer(str(path), _UnknownEngine) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"unix://{path}"
        finally:
            server.shutdown()


class _Skips:
    def __init__(self) -> None:
        self.skipped: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped and not hasattr(report, "wasxfail"):
            self.skipped.append(f"{report.nodeid}: {report.longrepr[2] if isinstance(report.longrepr, tuple) else ''}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.skipped and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.skipped:
            terminalreporter.section("--no-skips: these tests skipped", sep="=", red=True, bold=True)
            for line in self.skipped:
                terminalreporter.write_line(line)


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("no_skips"):
        config.pluginmanager.register(_Skips(), "no-skips")
