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


# A version, then optionally a pre-release ("-rc.1", "-beta.2", "rc3", "-dev"); whatever follows (a kernel's
# "-fc-v595", a package's "+dfsg1" or "-1ubuntu1") is a build suffix and dropped.
_VERSION = re.compile(r"(\d+(?:\.\d+)*)(?:[-.~_]?(alpha|beta|rc|pre|preview|a|b|c|dev)(?:[-._]?(\d+))?(?![A-Za-z]))?")


def _leading_version(text: str) -> Version:
    """'6.18.44-fc-v595' -> Version('6.18.44'): kernels and engines append build suffixes.  A pre-release
    suffix is kept: '29.1.0-rc.1' -> Version('29.1.0rc1'), which comes before 29.1.0."""
    match = _VERSION.match(str(text))
    if not match:
        raise InvalidVersion(text)
    release, stage, number = match.groups()
    if stage is None:
        return Version(release)
    return Version(f"{release}{'.dev' if stage == 'dev' else stage}{number or 0}")


def unmet_conditions(applies: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any]:
    """The ``applies`` conditions *facts* do not meet, as {fact: what the claim needs}.

    A condition is either a value the fact must equal, or — for versions such as
    ``kernel`` and ``engine_version`` — a PEP 440 specifier like ``"<6.2"``.  A pre-release is compared as
    PEP 440 orders it (29.1.0-rc.1 before 29.1.0): it meets ``"<30"`` and ``">=29.0"``, and, being on neither
    side of a change made in 29.1 for certain, neither ``">=29.1"`` nor ``"<29.1"`` (specifiers.py: ``<V``
    admits no pre-release of V itself).
    """
    unmet = {}
    for key, wanted in applies.items():
        have = facts.get(key)
        if isinstance(wanted, str) and wanted.startswith(VERSION_OPERATORS):
            try:
                met = have is not None and SpecifierSet(wanted).contains(_leading_version(have), prereleases=True)
            except (InvalidSpecifier, InvalidVersion):
                met = False
        else:
            met = have == wanted
        if not met:
            unmet[key] = wanted
    return unmet
