"""Lab objects entered, or exited, in threads of their own, so that a private engine's start (and its probe image)
or its stop overlaps the checks that run meanwhile.  Both are lab objects themselves (managed.py), entered like any
other, so that no thread of theirs outlives them: the run ends only once each has ended."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import ExitStack
from typing import Generic, TypeVar

from .managed import Managed

log = logging.getLogger("conformance")
M = TypeVar("M", bound=Managed)


class Background(Managed, Generic[M]):
    """``stack.enter_context(Background(ConfiguredLab(run)))`` starts entering the lab object in a thread of its own
    and returns at once.  ``take()`` waits for it and hands it over, entered: from then on its exit is the taker's,
    as that of any lab object it entered itself.  Where entering it raised, ``take()`` raises that (a lab object
    that fails to enter has undone what it did).  One that nobody took is exited when this exits."""

    def __init__(self, lab_object: M):
        self.lab_object = lab_object
        self._error: BaseException | None = None
        self._taken = False
        self._thread = threading.Thread(target=self._enter, name=f"enter {type(lab_object).__name__}", daemon=True)

    def _setup(self, stack: ExitStack) -> None:
        self._thread.start()
        stack.callback(self._exit_untaken)

    def _enter(self) -> None:
        try:
            self.lab_object.__enter__()
        except BaseException as exc:
            self._error = exc

    def take(self) -> M:
        self._thread.join()
        self._taken = True
        if self._error is not None:
            raise self._error
        return self.lab_object

    def _exit_untaken(self) -> None:
        self._thread.join()
        if not self._taken:
            self.lab_object.__exit__(None, None, None)


class Stopping(Managed):
    """``stopping.later(lab_object, then)``: *lab_object*, entered and now handed over, is exited (an engine stopped)
    in a thread of its own, then *then* runs; exiting this waits for every one.  A module's engines stop so while
    the next module's checks run.  A stop that fails is logged, not raised: it would fail whichever check happens
    to be the last (the run's sweep, or the next run's, removes what it left)."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []

    def _setup(self, stack: ExitStack) -> None:
        stack.callback(self._wait)

    def later(self, lab_object: Managed, then: Callable[[], None] = lambda: None) -> None:
        def stop() -> None:
            try:
                lab_object.__exit__(None, None, None)
                then()
            except Exception:
                log.exception("stopping in the background failed")

        thread = threading.Thread(target=stop, name=f"stop {type(lab_object).__name__}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _wait(self) -> None:
        for thread in self._threads:
            thread.join()
