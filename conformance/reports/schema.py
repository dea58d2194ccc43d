"""The report.json schema (report.schema.json, next to this module) and loading reports that follow it."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_PATH = Path(__file__).with_name("report.schema.json")


class ReportError(ValueError):
    """A file is not a report.json of a version these tools read."""


@cache
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def problems(report: dict[str, Any]) -> list[str]:
    """Every way *report* departs from the schema, as "path: message" lines."""
    validator = jsonschema.Draft202012Validator(schema())
    return [f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
            for error in sorted(validator.iter_errors(report), key=lambda e: list(map(str, e.absolute_path)))]


def load(path: Path) -> dict[str, Any]:
    """A report read from *path*, or ReportError naming the file and its first problem."""
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: not a readable JSON report: {exc}") from None
    found = problems(report)
    if found:
        raise ReportError(f"{path}: not a {schema()['$id']} report: {found[0]}")
    return report
