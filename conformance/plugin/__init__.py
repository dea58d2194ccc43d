"""The pytest plugin of the suite: its options, the run's set-up, and what a check or fixture imports.

It is loaded only where the checks run (``-p conformance.plugin``, which ``docker-net-conformance`` gives),
never auto-loaded into the environment's other pytest sessions; its options are conformance/plugin/options.py's.
Its two halves are plugins it registers: conformance/plugin/binding.py (claims, tiers, parametrization,
applicability, expected failures, Allure labels) and conformance/plugin/recording.py (outcomes, the workers'
facts, the reports).  The run's facts (report.json's run_info) live in conformance/plugin/run_facts.py.

A check declares the claims it verifies with ``@claims("topic/name", ...)`` and takes a ``claim`` argument;
at the end the plugin writes report.json, summary.md, junit.xml and allure-results/ into --report-dir.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from ..catalog import catalog
from ..reports.files import WriteError, checked_dir
from . import binding, expectations, preflight, recording
from .binding import NotCheckable, article_claim, claims, prerequisite
from .options import GROUP, OPTIONS
from .run_facts import RUN_FACTS, RunFacts, run_facts

# What checks and fixtures import from here.
__all__ = ["NotCheckable", "article_claim", "claims", "prerequisite", "require", "run_facts"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(*GROUP)
    for option in OPTIONS:
        option.addoption(group)


# Sessions that only inform (help, markers, fixtures, collection: ``docker-net-conformance list``): the plugin
# checks their options but makes no report directory, reaches no engine and prints nothing.
INFORMATIONAL = ("version", "markers", "showfixtures", "show_fixtures_per_test", "collectonly")


def _interrupted(signum: int, frame: Any) -> None:
    """SIGTERM (a CI job cancelled, `kill`, the runner's stop) ends the run as Ctrl-C does: pytest unwinds
    its fixtures, so the engines, namespaces and containers the run made are removed, not left to a sweep."""
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.import_plugin("conformance.plugin.markers")  # the claims marker
    # Registered here, not named in pytest_plugins: this module imports them (for what it exports), and pytest
    # warns that a plugin imported before it names it cannot have its asserts rewritten (they have none).
    for half in (binding, recording):
        config.pluginmanager.register(half, half.__name__)
    if config.option.help:
        return  # pytest stopped parsing at --help: the other options may not even hold their defaults
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupted)
    if config.option.variant:
        if config.option.engine in ("system", "podman"):
            raise pytest.UsageError("--variant changes a private dockerd; it cannot apply to --engine "
                                    f"{config.option.engine}")
        config.option.engine = "private"
    if config.option.dockerd:
        if config.option.engine not in ("auto", "private"):
            raise pytest.UsageError("--dockerd starts a private engine; it cannot apply to --engine "
                                    f"{config.option.engine}")
        config.option.engine = "private"
    if config.option.tier == "audit":
        if config.option.engine in ("private", "podman"):
            raise pytest.UsageError("--tier audit creates nothing, so it cannot start a private engine")
        config.option.engine = "system"
    unknown = [c for c in config.option.claim if c not in catalog().claims]
    if unknown:
        raise pytest.UsageError(f"--claim: no such claim in the catalog: {', '.join(unknown)}")
    facts = config.stash[RUN_FACTS] = RunFacts()
    path = config.option.expectations
    try:
        facts.expectations = expectations.load(path, catalog().claims) if path else None
    except expectations.ExpectationsError as exc:
        raise pytest.UsageError(f"--expectations: {exc}") from None
    if any(getattr(config.option, name, False) for name in INFORMATIONAL):
        return
    # Not resolved: a link at the directory's own name is refused (conformance/reports/files.py), not followed.
    report_dir: Path = config.option.report_dir.absolute()
    try:
        checked_dir(report_dir)
    except WriteError as exc:
        raise pytest.UsageError(f"--report-dir: {exc}") from None
    config.option.report_dir = report_dir
    # Set before junitxml's and allure's own configure hooks read them (tryfirst).
    if not getattr(config.option, "xmlpath", None):
        config.option.xmlpath = str(report_dir / "junit.xml")
    if not getattr(config.option, "allure_report_dir", None):
        config.option.allure_report_dir = str(report_dir / "allure-results")
        config.option.clean_alluredir = True
    facts.found(preflight.environment(config.option.engine, config.option.dockerd,
                                      creates=config.option.tier != "audit"))
    config.pluginmanager.register(recording.Recorder(config), "conformance-recorder")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """-n N (xdist's "load"): conformance/plugin/scheduling.py's ChecksScheduling."""
    if config.getvalue("dist") != "load":
        return None
    from .scheduling import ChecksScheduling

    return ChecksScheduling(config, log)


def require(request: pytest.FixtureRequest, what: str) -> None:
    """Fail the fixture (so every check that needs *what* errors) with the environment problem that takes it."""
    problem = run_facts(request.config).taking(what)
    if problem is not None:
        pytest.fail(str(problem), pytrace=False)
