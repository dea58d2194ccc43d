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
    """A report read from *path*, or ReportError naming the file and its first problem.

    What the tools write from a report must be writable: text with a lone surrogate (JSON's ``"\\ud800"``, which
    no UTF-8 file holds) is refused here, before any output is begun, as are bytes that are not UTF-8 and
    nesting deeper than Python's parser goes.
    """
    try:
        report = json.loads(Path(path).read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ReportError(f"{path}: not a readable JSON report: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ReportError(f"{path}: not a readable JSON report: not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not a readable JSON report: {exc}") from None
    except RecursionError:
        raise ReportError(f"{path}: not a readable JSON report: nested too deeply") from None
    try:
        found = problems(report)
        json.dumps(report, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise ReportError(f"{path}: not a {schema()['$id']} report: nested too deeply") from None
    except UnicodeEncodeError:
        raise ReportError(f"{path}: not a {schema()['$id']} report: text with a lone surrogate (\\ud800-\\udfff), "
                          "which is not UTF-8") from None
    if found:
        raise ReportError(f"{path}: not a {schema()['$id']} report: {' '.join(found[0].split())[:300]}")
    return report
