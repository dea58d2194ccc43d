"""How a claim's ``applies`` conditions are evaluated against the facts of a host and its engine.

A claim whose behaviour changed between engine or kernel versions says so with a version range, and one that
holds only under a setting (``userland_proxy: true``) with the value; an unmet condition makes the claim
skipped as not applicable rather than failed, and an expectations file's ``when`` is evaluated the same way.
This module imports nothing else from the package: the facts are plain data.
"""

from __future__ import annotations

import re
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

VERSION_OPERATORS = ("<", ">", "=", "!", "~")


def _leading_version(text: str) -> Version:
    """'6.18.44-fc-v595' -> Version('6.18.44'): kernels and engines append build suffixes."""
    match = re.match(r"\d+(\.\d+)*", str(text))
    if not match:
        raise InvalidVersion(text)
    return Version(match.group())


def unmet_conditions(applies: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any]:
    """The ``applies`` conditions *facts* do not meet, as {fact: what the claim needs}.

    A condition is either a value the fact must equal, or — for versions such as
    ``kernel`` and ``engine_version`` — a PEP 440 specifier like ``"<6.2"``.
    """
    unmet = {}
    for key, wanted in applies.items():
        have = facts.get(key)
        if isinstance(wanted, str) and wanted.startswith(VERSION_OPERATORS):
            try:
                met = have is not None and _leading_version(have) in SpecifierSet(wanted)
            except (InvalidSpecifier, InvalidVersion):
                met = False
        else:
            met = have == wanted
        if not met:
            unmet[key] = wanted
    return unmet
