"""Readiness probes instead of sleeps: poll a predicate until it holds or time runs out."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    pass


def wait_for(predicate: Callable[[], T | None], what: str, timeout: float = 20.0, interval: float = 0.05) -> T:
    """Return the first truthy value of *predicate*; raise WaitTimeout naming *what* otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
