"""Evidence a check gathers: files in the report directory, attached to Allure and report.json."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import allure

from ..reports import results
from ..reports.files import checked_dir, write_atomic


class Evidence:
    """Write evidence for one check under ``<report-dir>/evidence/<claim>/``."""

    def __init__(self, report_dir: Path, claim_id: str, user_properties: list[tuple[str, object]]):
        self.report_dir = report_dir
        self.directory = report_dir / "evidence" / re.sub(r"[^A-Za-z0-9.-]+", "_", claim_id)
        self._user_properties = user_properties

    def _path(self, name: str) -> Path:
        return checked_dir(self.directory) / name

    def _record(self, path: Path, kind: allure.attachment_type) -> Path:
        allure.attach.file(str(path), name=path.name, attachment_type=kind)
        self._user_properties.append(results.evidence(path.relative_to(self.report_dir).as_posix()))
        return path

    def text(self, name: str, content: str) -> Path:
        path = self._path(f"{name}.txt")
        write_atomic(path, content)
        return self._record(path, allure.attachment_type.TEXT)

    def json(self, name: str, data: Any) -> Path:
        path = self._path(f"{name}.json")
        write_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str))
        return self._record(path, allure.attachment_type.JSON)

    def pcap(self, name: str, capture) -> Path:
        path = write_atomic(self._path(f"{name}.pcap"), capture.pcap())
        return self._record(path, allure.attachment_type.PCAP)
