"""Host-wide reservations: a run holds a lock file for each thing it must not share.

Two runs on one host (two CI jobs, two xdist workers) each check that an address
range or a port is free before they use it, but both may see it free at once.
So the choice is made under a lock: a run takes an exclusive flock on
``reserved/<kind>/<key>.lock`` and holds it for as long as it uses the thing.
The kernel drops the lock when the process dies, however it dies, so a
reservation never outlives its run and never needs sweeping.  The same lock, on
``runs/<id>.lock``, tells live runs from dead ones (sweep.py).
"""

from __future__ import annotations

import fcntl
import itertools
import os
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TypeVar

from ..managed import Managed
from ..wait import wait_for
from .identity import STATE_DIR

RESERVED_DIR = STATE_DIR / "reserved"
T = TypeVar("T")


class Lock(Managed):
    """An exclusive flock on *path*, removed with the file when released: ``with Lock(path):`` holds it for the
    block, waiting while another process holds it.  ``acquire(blocking=False)`` tries it without waiting, for the
    reservations, which hold what they got until ``release_all``."""

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def _setup(self, stack: ExitStack) -> None:
        self.acquire()
        stack.callback(self.release)

    def acquire(self, blocking: bool = True) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                return False
            # The holder may have unlinked the file between our open and our lock: lock the file that is there.
            try:
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self.fd)
            self.fd = None


class Reservations:
    """What one run holds; ``release_all()`` (at the end of the run) gives it back."""

    def __init__(self) -> None:
        self._held: list[Lock] = []

    def _lock(self, kind: str, key: object) -> Lock:
        return Lock(RESERVED_DIR / kind / f"{str(key).replace('/', '_')}.lock")

    def first_free(self, kind: str, candidates: Iterable[T], free: Callable[[T], bool]) -> T | None:
        """The first candidate that is *free* and that no other run holds, now held by this run."""
        for candidate in candidates:
            if not free(candidate):
                continue
            lock = self._lock(kind, candidate)
            if lock.acquire(blocking=False):
                if free(candidate):  # still free now that nobody else can choose it
                    self._held.append(lock)
                    return candidate
                lock.release()
        return None

    def hold(self, kind: str, key: object, timeout: float = 60.0) -> None:
        """Hold *key*, waiting while another run holds it (for things with one fixed name, like a port an
        image EXPOSEs); whether it is free of everything else is the caller's to check."""
        lock = self._lock(kind, key)
        wait_for(lambda: lock.acquire(blocking=False), f"another run to release {kind} {key}", timeout=timeout,
                 interval=0.1)
        self._held.append(lock)

    def release_all(self) -> None:
        while self._held:
            self._held.pop().release()


def from_random_start(items: Sequence[T]) -> Iterator[T]:
    """Candidates from a random one on, wrapping around, so concurrent runs rarely contend for the same one
    (and none pays to shuffle the 30,000 ports of a port range for the one it takes)."""
    start = random.randrange(len(items)) if items else 0
    return itertools.chain(items[start:], items[:start])
