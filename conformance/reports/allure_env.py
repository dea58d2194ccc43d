"""What Allure shows beside the results: the environment of the run, and categories that sort the outcomes.

The categories keep apart the three reasons a claim does not simply pass: the
host violates it, the environment broke (a check could not run to a verdict),
or the article is known to be wrong (a documented inaccuracy) or the host class
is known to differ (an expectations file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .files import checked_dir, write_atomic

ENVIRONMENT = ("hostname", "kernel", "distro", "engine_version", "api_version", "engine_private", "engine_variant",
               "firewall_backend", "iptables_variant", "storage_driver", "cgroup_version", "run_id", "expectations")

CATEGORIES = [
    {"name": "Claim violated by the host", "matchedStatuses": ["failed"],
     "description": "The check ran and the host did not behave as the claim states."},
    {"name": "Broken environment", "matchedStatuses": ["broken"],
     "description": "The check could not reach a verdict: the lab, the engine or a tool failed."},
    {"name": "Documented inaccuracy", "matchedStatuses": ["skipped"], "messageRegex": "(?s).*documented inaccuracy.*",
     "description": "The article is wrong; the corrected expectation held and the article's statement did not."},
    {"name": "Known deviation of this host class", "matchedStatuses": ["skipped"],
     "messageRegex": "(?s).*known deviation.*"},
    {"name": "Not applicable to this engine", "matchedStatuses": ["skipped"], "messageRegex": "(?s).*not applicable.*"},
]


def _value(value: Any) -> str:
    return " ".join(str(value).split()).replace("\\", "\\\\")


def write(results_dir: Path, run_info: dict[str, Any]) -> None:
    checked_dir(results_dir)
    lines = [f"{key}={_value(run_info[key])}" for key in ENVIRONMENT if run_info.get(key) is not None]
    write_atomic(results_dir / "environment.properties", "\n".join(lines) + "\n")
    write_atomic(results_dir / "categories.json", json.dumps(CATEGORIES, indent=2) + "\n")
