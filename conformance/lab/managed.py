"""The lab's one cleanup idiom: an object set up in steps, undone in reverse, whatever happens.

A lab object (an engine, a namespace, a capture, a check's scope, a lock, a whole lab) implements
``_setup(stack)``: each step registers its own undoing on *stack* as soon as it is done (``stack.enter_context``,
``stack.callback``).  When a later step raises, ``__enter__`` undoes the earlier ones before it raises; when all
succeed, the stack is kept for ``__exit__``, which runs every undoing even when one fails, then raises.  Lab
objects are entered with ``with`` or an ExitStack's ``enter_context``, never by hand, but by background.py, which
enters one in a thread of its own (``Background``: an engine started early) or exits one so (``Stopping``: a
module's engines stopped while the next module runs), and hands it over; a second ``__exit__`` does nothing.

The rule: whatever owns something the run creates and must remove (a namespace, a link, a process, a container,
a lock file, a thread still to be waited for) is a Managed, and is entered by whatever owns it in turn.  A part
that is no lab object of its own is given back by an undoing its owner registers (``Reservations.release_all``).
A library's own context manager stays as it is (a pyroute2 socket, a ThreadPoolExecutor inside one step), and so
does one that only moves the calling thread for the length of a block and creates nothing (``Netns.entered``:
setns(2) there and back).
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Self


class Managed:
    """Base of every lab object: ``with Thing(...) as thing:`` runs ``_setup``, binds the object itself."""

    _stack: ExitStack | None = None

    def _setup(self, stack: ExitStack) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        with ExitStack() as stack:
            self._setup(stack)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()
