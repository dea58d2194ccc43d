"""The Allure HTML report, rendered with Allure 3 (npm) and opened in headless Chromium: the claims, the
environment and a check's pcap evidence are there.

Needs npx (Node.js) with the npm registry reachable, and chromium, which bin/selftest installs; a bare
`pytest tests` skips it, with the reason, where either is missing.
"""

import json
import os
import re
import shutil
import subprocess

import pytest

from conformance.commands.runner import EngineOptions, run_suite

ALLURE = "allure@3"
pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the suite"),
    pytest.mark.skipif(not shutil.which("chromium"), reason="needs chromium (bin/selftest installs it)"),
    pytest.mark.skipif(not shutil.which("npx"), reason="needs npx to fetch Allure 3 from the npm registry "
                                                       "(bin/selftest installs npm)"),
]


def rendered(url: str) -> str:
    """The page's text once its scripts have run (the report reads its data from files beside it)."""
    dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
                          "--virtual-time-budget=15000", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


def test_allure_report_shows_claims_environment_and_pcap(tmp_path, system_engine):
    wanted = ["egress/masquerade-source", "none/only-loopback", "defaults/three-networks"]
    run_suite(tmp_path / "run", *[arg for claim in wanted for arg in ("--claim", claim)],
              engine=EngineOptions("system"), timeout=300)
    generate = subprocess.run(["npx", "--yes", ALLURE, "generate", str(tmp_path / "run" / "allure-results"),
                               "--output", str(tmp_path / "html")], capture_output=True, text=True, timeout=600)
    if generate.returncode != 0 and not (tmp_path / "html" / "index.html").exists():
        pytest.skip(f"cannot run {ALLURE} through npx (no npm registry?): {generate.stderr.strip()[-300:]}")
    index = tmp_path / "html" / "index.html"
    overview = rendered(index.as_uri())
    assert f"Total {len(wanted)}" in overview and f"Passed {len(wanted)}" in overview, overview[:1500]
    assert "engine_version" in overview and "iptables_variant" in overview, "environment.properties is missing"
    results = {json.loads(p.read_text())["name"]: json.loads(p.read_text())["id"]
               for p in (tmp_path / "html" / "data" / "test-results").glob("*.json")}
    source = next(rid for name, rid in results.items() if "egress/masquerade-source" in name)
    page = rendered(f"{index.as_uri()}#{source}")
    assert "egress/masquerade-source" in page and "bridge.pcap" in page and "upstream.pcap" in page, page[:1500]
