"""The engine the self-tests call the system engine: the one at DOCKER_HOST, as a user's host has one.

Where an engine answers, the session uses it and leaves it exactly as it was: it never stops, restarts
or reconfigures it.  Where nothing answers (a fresh machine, where bin/setup has installed docker.io and
started nothing), a plain dockerd is started for the session and stopped when it ends.  What answers
but cannot be used is an error, and is never replaced: the tests would otherwise test a substitute.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from conformance.lab.engines.engine import Engine, EngineUnavailable, NoEngine
from conformance.lab.wait import wait_for

# A dockerd starting on a loaded 2-core machine (first start: it makes its data-root) takes a while.
START_TIMEOUT = 120
STOP_TIMEOUT = 60


@contextmanager
def session_engine(url: str, dockerd: Sequence[str] | None, log: Path) -> Iterator[subprocess.Popen | None]:
    """An engine answering at *url* for the block: the dockerd started as *dockerd* (argv) when nothing
    answered, or None when one already did.  With *dockerd* None, nothing answering raises NoEngine;
    an engine that answers but cannot be used raises EngineUnavailable, and nothing is started."""
    try:
        Engine.connect(url).client.close()
    except NoEngine:
        if dockerd is None:
            raise
    else:
        yield None
        return
    process = _start(list(dockerd), url, log)
    try:
        yield process
    finally:
        _stop(process)


def _start(argv: list[str], url: str, log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)

    def answering() -> bool:
        if process.poll() is not None:
            raise EngineUnavailable(f"{' '.join(argv)} exited ({process.returncode}); the end of {log}:\n"
                                    + "\n".join(log.read_text(errors="replace").splitlines()[-20:]))
        try:
            Engine.connect(url).client.close()
        except EngineUnavailable:
            return False
        return True

    try:
        wait_for(answering, f"{argv[0]} to answer at {url} (its log: {log})", timeout=START_TIMEOUT, interval=0.2)
    except BaseException:
        _stop(process)
        raise
    return process


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM, as a service manager stops dockerd (it stops its containers and removes its socket)."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
