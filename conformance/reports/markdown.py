"""Values written into Markdown (summary.md, matrix.md, the diff): inert, whatever a report holds.

A fleet host's report is data from another machine, and the fleet workflow appends these files to the job
summary GitHub renders: a hostname, message or topic carrying Markdown or HTML would become links, images or
markup there, and a newline a heading or a table row of its own; in a terminal, a control character is an
escape sequence.  So every value goes through ``text`` (one line of printable characters, each character
Markdown gives a meaning escaped) or ``code`` (a code span, only for a name in which no character means
anything, else ``text``).
"""

from __future__ import annotations

import re
from typing import Any

# CommonMark's and GFM's inline syntax (links, images, emphasis, code, HTML, entities, strikethrough) and the
# table cell separator; the backslash first, so that no escape can be undone.
_SPECIAL = re.compile(r"([\\`*_\[\]()!<>&|~])")
_NAME = re.compile(r"[A-Za-z0-9._/:@+=, -]+")


def _line(value: Any, limit: int | None) -> str:
    """*value* as one line: every run of whitespace or non-printable characters one space, cut at *limit*
    (before escaping, so that no escape is cut in half)."""
    line = " ".join("".join(c if c.isprintable() else " " for c in str(value)).split())
    return line[:limit] if limit is not None else line


def text(value: Any, limit: int | None = None) -> str:
    return _SPECIAL.sub(r"\\\1", _line(value, limit))


def code(value: Any, limit: int | None = None) -> str:
    line = _line(value, limit)
    return f"`{line}`" if _NAME.fullmatch(line) else text(line)
