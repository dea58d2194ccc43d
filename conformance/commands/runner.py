"""The one way to run the suite from the suite's own tools and the self-tests: ``python -m conformance
--report-dir DIR [ENGINE OPTIONS] [ARGS]`` in a subprocess, as a user starts it.

``mutate``, ``benchmark``, ``repeat``, ``matrix`` and the self-tests all run it through here: ``run_suite``
waits for the run and returns its exit status, wall time, output and parsed report.json; ``start`` returns
the running process, for a run that goes on beside another or is killed on purpose.  An engine is chosen
with ``EngineOptions`` (the suite's ``--engine``, ``--dockerd``, ``--variant``, ``--daemon-opt`` and, for an
engine at a socket, ``DOCKER_HOST``), so a tool that takes ``--dockerd`` hands it to every run it makes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

# A full serial run takes a minute or two; one on a loaded machine, or on Podman, several.  A run past this
# is stuck, and is stopped as a user would stop it (SIGTERM: it unwinds its fixtures, removing what it made; an
# xdist worker it takes down may leave its lab to the next run's sweep), then killed.
TIMEOUT_S = 1800.0
STOP_S = 120.0


class RunFailed(RuntimeError):
    """A run of the suite wrote no report (or did not end in time); the message ends with its output."""


@dataclass(frozen=True)
class EngineOptions:
    """The engine a run tests, as the suite's options name it; the default is the suite's (``--engine auto``)."""

    engine: str | None = None  # --engine auto|system|private|podman
    dockerd: str | None = None  # --dockerd PATH: this build as the private engine
    variant: str | None = None  # --variant NAME: a private engine as a named fault or configuration
    daemon_opts: tuple[str, ...] = ()  # --daemon-opt=OPT, each
    docker_host: str | None = None  # DOCKER_HOST of the run: whatever engine answers at that socket

    def args(self) -> list[str]:
        return [*(["--engine", self.engine] if self.engine else []),
                *(["--dockerd", str(self.dockerd)] if self.dockerd else []),
                *(["--variant", self.variant] if self.variant else []),
                *(f"--daemon-opt={option}" for option in self.daemon_opts)]

    def env(self) -> dict[str, str]:
        return {"DOCKER_HOST": self.docker_host} if self.docker_host else {}


@dataclass
class SuiteRun:
    """A finished run: its exit status, wall time, what it printed (stdout and stderr) and its report."""

    argv: list[str]
    report_dir: Path
    exit: int
    wall_s: float
    output: str
    report: dict[str, Any] | None = field(repr=False)

    def tail(self, chars: int = 3000) -> str:
        return self.output[-chars:]

    def required(self) -> dict[str, Any]:
        """The report, or RunFailed naming the command and ending with what it printed."""
        if self.report is None:
            raise RunFailed(f"no report from `{shown(self.argv)}` (exit {self.exit}):\n{self.tail()}")
        return self.report


def command(report_dir: Path, *args: str, engine: EngineOptions | None = None) -> list[str]:
    """The argv of a run: quiet (a line per failure, the summary), into *report_dir*, on *engine*."""
    return [sys.executable, "-m", "conformance", "--report-dir", str(report_dir), "-q",
            *(engine.args() if engine else []), *args]


def shown(argv: list[str]) -> str:
    """A run's command as a user would type it."""
    return " ".join(["python", *argv[1:]])


class Running:
    """A run of the suite in progress (``start``); ``wait()`` returns it as a SuiteRun."""

    def __init__(self, report_dir: Path, args: Sequence[str], engine: EngineOptions | None = None,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None):
        self.report_dir = report_dir
        self.argv = command(report_dir, *args, engine=engine)
        # A report left by an earlier run in the same directory must not pass for this run's.
        (report_dir / "report.json").unlink(missing_ok=True)
        # Output to a file, not a pipe: a run nobody reads until it ends (or kills) never blocks on a full pipe.
        # It stays open for the run's life; wait() reads and closes it.
        self._output: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._started = time.perf_counter()
        try:
            self.process = subprocess.Popen(self.argv, stdout=self._output, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=cwd,
                                            env={**os.environ, **(engine.env() if engine else {}), **(env or {})})
        except BaseException:
            self._output.close()
            raise

    def wait(self, timeout: float | None = TIMEOUT_S) -> SuiteRun:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise RunFailed(f"`{shown(self.argv)}` did not end in {timeout} s:\n{self._read()[-3000:]}") from None
        wall = round(time.perf_counter() - self._started, 2)
        path = self.report_dir / "report.json"
        report = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        return SuiteRun(self.argv, self.report_dir, self.process.returncode, wall, self._read(), report)

    def stop(self) -> None:
        """SIGTERM (the run removes what it made), then SIGKILL if it does not end."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _read(self) -> str:
        self._output.seek(0)
        text = self._output.read()
        self._output.close()
        return text


def start(report_dir: Path, *args: str, engine: EngineOptions | None = None, env: Mapping[str, str] | None = None,
          cwd: Path | None = None) -> Running:
    """Start a run of the suite into *report_dir* with *args* (pytest's and the suite's) on *engine*; *env*
    adds to this process's environment."""
    return Running(report_dir, args, engine, env, cwd)


def run_suite(report_dir: Path, *args: str, engine: EngineOptions | None = None,
              env: Mapping[str, str] | None = None, cwd: Path | None = None,
              timeout: float | None = TIMEOUT_S) -> SuiteRun:
    """Run the suite and wait for it (``start`` then ``wait``)."""
    return start(report_dir, *args, engine=engine, env=env, cwd=cwd).wait(timeout)
