"""Per-claim outcomes, folded from pytest's phase reports (setup, call, teardown)."""

from __future__ import annotations

from dataclasses import dataclass, field

STATUSES = ("passed", "failed", "skipped", "xfailed", "xpassed", "error")
UNEXPECTED = ("failed", "xpassed", "error")
# The user property with which conformance/plugin/recording.py names a call that pytest failed as XPASS(strict).
STRICT_XPASS = ("outcome", "xpassed")


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
    result.duration += report.duration
    result.evidence.extend(v for k, v in report.user_properties if k == "evidence" and v not in result.evidence)
    result.expectation = dict(report.user_properties).get("expectation", result.expectation)
    xfail = hasattr(report, "wasxfail")
    if report.when == "setup":
        if report.failed:
            result.status, result.message = "error", _message(report)
        elif report.skipped:
            result.status = "xfailed" if xfail else "skipped"
            result.message = report.wasxfail if xfail else _message(report)
    elif report.when == "call":
        if xfail and report.passed and ("expected_status", "flaky") in map(tuple, report.user_properties):
            result.status, result.message = "passed", ""  # a flaky known deviation that did not happen this time
        elif xfail:
            result.status = "xfailed" if report.skipped else "xpassed"
            result.message = report.wasxfail
        elif report.passed:
            result.status, result.message = "passed", ""
        elif report.failed:
            result.status = "xpassed" if STRICT_XPASS in map(tuple, report.user_properties) else "failed"
            result.message = _message(report)
        else:
            result.status, result.message = "skipped", _message(report)
    elif report.when == "teardown" and report.failed and result.status not in UNEXPECTED:
        result.status, result.message = "error", f"teardown: {_message(report)}"
