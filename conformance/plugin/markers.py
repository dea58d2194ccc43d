"""The suite's pytest marker, registered in one place: this plugin.

The session that runs the checks loads it through conformance/plugin/__init__.py (that session reads no ini file,
so the marker cannot live in one); the project's own tests load it through tests/conftest.py, because
tests/test_catalog.py imports the checks, whose ``@claims`` applies the marker.
"""

from __future__ import annotations

import pytest

MARKERS = ("claims(*ids, tier='full'): the catalog claims a check verifies; the check is parametrized over them",)


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
