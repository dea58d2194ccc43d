"""Context managers entered, or exited, in threads of their own, so that a private engine's start (and its
probe image) or its stop overlaps the checks that run meanwhile."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from typing import Any

log = logging.getLogger("conformance")


class Background:
    """``Background(ConfiguredLab(run))`` starts entering it now; ``with`` (or an ExitStack's
    ``enter_context``) waits for it and returns what entering returned, or raises what entering raised.
    ``close()`` exits it, entered or not, once however often it is called (``__exit__`` calls it)."""

    def __init__(self, manager: AbstractContextManager):
        self.manager = manager
        self._entered: Any = None
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._enter, name=f"enter {type(manager).__name__}", daemon=True)
        self._thread.start()

    def _enter(self) -> None:
        try:
            self._entered = self.manager.__enter__()
        except BaseException as exc:
            self._error = exc

    def __enter__(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._entered

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._thread.join()
        if self._error is None and not self._closed:  # a manager that failed to enter cleaned up after itself
            self._closed = True
            self.manager.__exit__(None, None, None)


class Stopping:
    """``with Stopping() as stopping: ... stopping.later(stack, then)``: *stack* is closed (an engine stopped)
    in a thread of its own, then *then* runs; leaving the with block waits for every one.  A module's engines
    stop so while the next module's checks run.  A stop that fails is logged, not raised: it would fail
    whichever check happens to be the last (the run's sweep, or the next run's, removes what it left)."""

    def __init__(self):
        self._threads: list[threading.Thread] = []

    def later(self, stack: ExitStack, then: Callable[[], None] = lambda: None) -> None:
        def close() -> None:
            try:
                stack.close()
                then()
            except Exception:
                log.exception("stopping in the background failed")

        thread = threading.Thread(target=close, name="stop in the background", daemon=True)
        self._threads.append(thread)
        thread.start()

    def __enter__(self) -> Stopping:
        return self

    def __exit__(self, *exc) -> None:
        for thread in self._threads:
            thread.join()
