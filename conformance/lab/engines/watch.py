"""Whether an engine the run stands on still runs, and, once it has stopped, the one line that says so.

An engine can stop under a run (killed, crashed, its service stopped): from then on whatever a check sees of it
(a refused connection, a namespace gone from /proc) says nothing about the host.  ``Watch`` looks at the
engine's process twice a second, in a thread of its own, and when it has ended keeps the line naming which engine
stopped, when, and the last lines of its log (a private engine's: the suite keeps it; a system engine's is the
host's journal).  ``gone()`` also looks at once, so a check that ends the moment its engine did is told.
"""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import psutil

from ..managed import Managed
from ..safety import redact
from ..safety.identity import RUN_DIR, STATE_DIR
from .engine import Engine, answered

INTERVAL_S = 0.5
TAIL_LINES = 5
_STOPPING: set[int] = set()  # the engines the suite itself is stopping (their pids): no death of theirs


def stopping(pid: int) -> None:
    """The suite is about to stop the engine *pid* itself (private.py): its end is no death."""
    _STOPPING.add(pid)


def private_log(engine: Engine) -> Path | None:
    """The log of a private engine of the suite's (private.py writes it beside its data-root), else None."""
    socket = Path(urlparse(engine.url).path)
    if socket.parent.parent != RUN_DIR:
        return None
    return STATE_DIR / socket.parent.name / "dockerd.log"


class Watch(Managed):
    """``with Watch(engine, "the engine under test") as watch: ... watch.gone()`` — None while it runs, else
    the line that says it stopped."""

    def __init__(self, engine: Engine, role: str):
        self.engine = engine
        self.role = role
        self._line: str | None = None
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def _setup(self, stack: ExitStack) -> None:
        self._started = time.monotonic()
        self.binary = self.engine.binary  # read while it runs: /proc/PID/exe is gone with it
        try:
            self._process: psutil.Process | None = psutil.Process(self.engine.pid)
        except psutil.NoSuchProcess:
            self._process = None
        thread = threading.Thread(target=self._look, name=f"watch {self.role}", daemon=True)
        thread.start()
        stack.callback(thread.join)
        stack.callback(self._stopped.set)

    def _look(self) -> None:
        while not self._stopped.wait(INTERVAL_S):
            if self.gone() is not None:
                return

    def _running(self) -> bool:
        if self._process is None:
            return False
        try:
            # is_running() also tells a pid reused by another process from the engine's
            return self._process.is_running() and self._process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def gone(self) -> str | None:
        """None while the engine runs (or once the suite stopped it itself); once it has stopped, the line."""
        with self._lock:
            if self._line is None and self.engine.pid not in _STOPPING and not self._running():
                self._line = self._describe()
            return self._line

    def _describe(self) -> str:
        after = round(time.monotonic() - self._started)
        when = datetime.now(UTC).strftime("%H:%M:%S UTC")
        log = private_log(self.engine)
        if log is not None:
            try:
                lines = log.read_text(errors="replace").splitlines()[-TAIL_LINES:]
            except OSError:
                lines = []
            tail = (f"the last lines of its log ({log}): " + " | ".join(redact.text(line.strip()) for line in lines)
                    if lines else f"its log ({log}) is empty")
        else:
            tail = "its log is the host's (journalctl -u docker, or the service's own)"
        return (f"{self.role}, {answered(self.engine.version)} ({self.binary or 'executable unknown'}, pid "
                f"{self.engine.pid}), stopped at {when}, {after} s after the run first reached it; every check "
                f"after that is unchecked; {tail}")
