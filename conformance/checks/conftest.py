"""Lab fixtures for the checks: one lab per session, one scope per check."""

from __future__ import annotations

import pytest

from conformance.lab import Lab, Scope
from conformance.plugin import RECORDER


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest) -> Lab:
    option = request.config.option
    with Lab(engine_mode=option.engine, daemon_options=tuple(option.daemon_opt)) as lab:
        request.config.stash[RECORDER].run_info.update(lab.run_info())
        yield lab


@pytest.fixture
def scope(lab: Lab) -> Scope:
    """Containers and networks of this check, removed when it ends, however it ends."""
    with lab.scope() as scope:
        yield scope
