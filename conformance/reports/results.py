"""Per-claim outcomes, folded from pytest's phase reports (setup, call, teardown), and the properties with which
the suite's plugin tells them what pytest's reports do not.

Those properties are pytest's user properties: (name, value) pairs of strings, which xdist sends with each phase
report from a worker to the controller and junit.xml shows as ``<property>`` elements.  The plugin writes them
with the functions below and fold() reads them with Properties, so each name is spelled here only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

STATUSES = ("passed", "failed", "skipped", "xfailed", "xpassed", "error")
UNEXPECTED = ("failed", "xpassed", "error")

Property = tuple[str, str]
_CLAIM = "claim"
_TIER = "tier"
_EXPECTATION = "expectation"
_EXPECTED_STATUS = "expected_status"
_EVIDENCE = "evidence"
_ENGINE = "engine"
_ENGINE_GONE = "engine_gone"
_NOT_CHECKABLE = "not_checkable"
# A call that pytest failed as XPASS(strict): conformance/plugin/recording.py names it so, as no exception does.
STRICT_XPASS: Property = ("outcome", "xpassed")


def bound(claim: str, tier: str) -> list[Property]:
    """The claim a check verifies and its tier (conformance/plugin/binding.py, at collection)."""
    return [(_CLAIM, claim), (_TIER, tier)]


def expected(reason: str, status: str) -> list[Property]:
    """The known deviation (--expectations) a check's outcome is expected to show, and its status: failed or
    flaky (conformance/plugin/binding.py, at the check's setup)."""
    return [(_EXPECTATION, reason), (_EXPECTED_STATUS, status)]


def evidence(path: str) -> Property:
    """A file of evidence a check wrote, relative to the report directory (conformance/plugin/evidence.py)."""
    return (_EVIDENCE, path)


def ran_on(engine: dict[str, Any]) -> Property:
    """The engine a check ran on ({product, version, binary}), as JSON (conformance/checks/conftest.py)."""
    return (_ENGINE, json.dumps(engine, sort_keys=True))


def engine_gone(line: str) -> Property:
    """The engine a check ran on stopped during it: its outcome is no verdict on the host, but an error with
    *line*, the problem line that says which engine stopped, when, and its last log lines."""
    return (_ENGINE_GONE, line)


def not_checkable(line: str) -> Property:
    """What the check needed besides its claim and could not show (conformance/plugin/binding.py's NotCheckable):
    an error with *line*, whatever pytest made of the exception (a failure, or an expected one)."""
    return (_NOT_CHECKABLE, line)


@dataclass(frozen=True)
class Properties:
    """One phase report's properties, read back; pytest's own and other plugins' are passed over."""

    claim: str | None = None
    tier: str = "full"
    expectation: str | None = None
    expected_status: str | None = None
    evidence: tuple[str, ...] = ()
    strict_xpass: bool = False
    engine: str | None = None
    engine_gone: str | None = None
    not_checkable: str | None = None

    @classmethod
    def of(cls, user_properties: Iterable[tuple[str, object]]) -> Properties:
        """Read *user_properties*: a name given twice takes the last value, and evidence every one."""
        named: dict[str, str] = {}
        paths: list[str] = []
        strict_xpass = False
        for name, value in user_properties:
            if name == _EVIDENCE:
                paths.append(str(value))
            elif (name, value) == STRICT_XPASS:
                strict_xpass = True
            else:
                named[name] = str(value)
        return cls(claim=named.get(_CLAIM), tier=named.get(_TIER, cls.tier), expectation=named.get(_EXPECTATION),
                   expected_status=named.get(_EXPECTED_STATUS), evidence=tuple(paths), strict_xpass=strict_xpass,
                   engine=named.get(_ENGINE), engine_gone=named.get(_ENGINE_GONE),
                   not_checkable=named.get(_NOT_CHECKABLE))


@dataclass
class ClaimResult:
    claim: str
    nodeid: str
    tier: str = "full"
    status: str = "error"
    message: str = ""
    duration: float = 0.0
    evidence: list[str] = field(default_factory=list)
    expectation: str | None = None  # the known deviation (expectations file) that explains the outcome
    engine: dict[str, Any] | None = None  # the engine it ran on: {product, version, binary}; None: no engine


def _message(report) -> str:
    longrepr = report.longrepr
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple):  # a skip: (path, line, reason)
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message.removeprefix("Failed: ")  # pytest.fail's own prefix
    return str(longrepr).strip().splitlines()[-1]


def fold(result: ClaimResult, report) -> None:
    """Update *result* with one phase report of its test."""
    told = Properties.of(report.user_properties)
    result.duration += report.duration
    result.evidence.extend(path for path in told.evidence if path not in result.evidence)
    result.expectation = result.expectation if told.expectation is None else told.expectation
    xfail = hasattr(report, "wasxfail")
    if report.when == "setup":
        if report.failed:
            result.status, result.message = "error", _message(report)
        elif report.skipped:
            result.status = "xfailed" if xfail else "skipped"
            result.message = report.wasxfail if xfail else _message(report)
    elif report.when == "call":
        if xfail and report.passed and told.expected_status == "flaky":
            result.status, result.message = "passed", ""  # a flaky known deviation that did not happen this time
        elif xfail:
            result.status = "xfailed" if report.skipped else "xpassed"
            result.message = report.wasxfail
        elif report.passed:
            result.status, result.message = "passed", ""
        elif report.failed:
            result.status = "xpassed" if told.strict_xpass else "failed"
            result.message = _message(report)
        else:
            result.status, result.message = "skipped", _message(report)
    elif report.when == "teardown" and report.failed and result.status not in UNEXPECTED:
        result.status, result.message = "error", f"teardown: {_message(report)}"
    if told.engine is not None:
        result.engine = json.loads(told.engine)
    if told.not_checkable is not None:
        result.status, result.message = "error", told.not_checkable
    if told.engine_gone is not None:  # whatever the check saw, the engine it asked stopped under it
        result.status, result.message = "error", told.engine_gone
