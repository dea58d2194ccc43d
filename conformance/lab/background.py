"""A context manager entered in a thread of its own, so that its setup (a private engine's start, its
probe image) overlaps the checks that run meanwhile."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import Any


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
