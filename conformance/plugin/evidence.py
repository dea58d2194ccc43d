"""Evidence a check gathers: files in the report directory, attached to Allure and report.json."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import allure

from ..reports import results


class Evidence:
    """Write evidence for one check under ``<report-dir>/evidence/<claim>/``."""

    def __init__(self, report_dir: Path, claim_id: str, user_properties: list[tuple[str, object]]):
        self.report_dir = report_dir
        self.directory = report_dir / "evidence" / re.sub(r"[^A-Za-z0-9.-]+", "_", claim_id)
        self._user_properties = user_properties

    def _path(self, name: str) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        return self.directory / name

    def _record(self, path: Path, kind: allure.attachment_type) -> Path:
        allure.attach.file(str(path), name=path.name, attachment_type=kind)
        self._user_properties.append(results.evidence(path.relative_to(self.report_dir).as_posix()))
        return path

    def text(self, name: str, content: str) -> Path:
        path = self._path(f"{name}.txt")
        path.write_text(content, encoding="utf-8")
        return self._record(path, allure.attachment_type.TEXT)

    def json(self, name: str, data: Any) -> Path:
        path = self._path(f"{name}.json")
        path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str), encoding="utf-8")
        return self._record(path, allure.attachment_type.JSON)

    def pcap(self, name: str, capture) -> Path:
        path = capture.write(self._path(f"{name}.pcap"))
        return self._record(path, allure.attachment_type.PCAP)
