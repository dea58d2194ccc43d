"""Lab fixtures for the checks: one lab per session, one scope per check."""

from __future__ import annotations

import pytest

from conformance.lab import EngineUnavailable, Lab, Scope
from conformance.lab.probe import ProbeUnavailable
from conformance.plugin import RECORDER


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest) -> Lab:
    option = request.config.option
    try:
        lab = Lab(engine_mode=option.engine, daemon_options=tuple(option.daemon_opt)).__enter__()
    except (EngineUnavailable, ProbeUnavailable) as exc:
        pytest.fail(f"lab unavailable: {exc}", pytrace=False)
    try:
        request.config.stash[RECORDER].run_info.update(lab.run_info())
        yield lab
    finally:
        lab.__exit__(None, None, None)


@pytest.fixture
def scope(lab: Lab) -> Scope:
    """Containers and networks of this check, removed when it ends, however it ends."""
    with lab.scope() as scope:
        yield scope
