"""diff, merge and update-expectations, as a user runs them, on reports that follow the schema (no engine needed)."""

import json
import shutil
import struct
import subprocess
import sys
import zlib
from html.parser import HTMLParser

import pytest
import yaml

from conformance.catalog import catalog
from conformance.reports import matrix, report_json, schema
from conformance.reports.results import ClaimResult
from conformance.reports.summary import WORD


def make_report(path, statuses, **run_info):
    """A report.json as the suite writes it, every catalogued claim passing unless *statuses* says otherwise."""
    results = [ClaimResult(claim=c.id, nodeid=f"check[{c.id}]", status=statuses.get(c.id, "passed"),
                           message="" if statuses.get(c.id, "passed") == "passed" else "AssertionError: it broke",
                           evidence=[f"evidence/{c.id.replace('/', '_')}/capture.pcap"])
               for c in catalog() if statuses.get(c.id) != "absent"]
    info = {"hostname": "runner", "kernel": "6.1.0", "start": "s", "end": "e", "run_id": "abc123",
            "engine_version": "20.10.24", "iptables_variant": "nf_tables", **run_info}
    path.parent.mkdir(parents=True, exist_ok=True)
    report_json.write(report_json.build(catalog(), results, info), path)
    return path


def conformance(*args):
    return subprocess.run([sys.executable, "-m", "conformance", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def test_written_reports_follow_the_schema(tmp_path):
    report = json.loads(make_report(tmp_path / "r.json", {"egress/masquerade-rule": "failed"}).read_text())
    assert report["schema"] == schema.schema()["$id"]
    assert schema.problems(report) == []


def test_schema_rejects_a_renamed_field(tmp_path):
    report = json.loads(make_report(tmp_path / "r.json", {}).read_text())
    report["claims"][0]["outcome"] = report["claims"][0].pop("status")
    assert any("status" in problem for problem in schema.problems(report))


def test_diff_names_exactly_the_changed_claims_and_fails_on_regression(tmp_path):
    base = make_report(tmp_path / "base.json", {"ports/dnat-rule": "failed", "usernet/drivers": "absent"})
    head = make_report(tmp_path / "head.json", {"egress/masquerade-rule": "failed", "host/port-conflict": "skipped",
                                                "none/own-namespace": "absent"}, kernel="6.2.0",
                       iptables_variant="legacy")
    completed = conformance("diff", base, head)
    out = completed.stdout
    assert completed.returncode == 1
    assert "| kernel | 6.1.0 | 6.2.0 |" in out and "| iptables_variant | nf\\_tables | legacy |" in out
    sections = {title: block for title, _, block in (part.partition("\n") for part in out.split("### ")[1:])}
    assert "`egress/masquerade-rule`" in sections["Regressed (1)"]
    assert "`ports/dnat-rule`" in sections["Improved (1)"]
    assert "`host/port-conflict`" in sections["Changed (1)"]
    assert "`usernet/drivers`" in sections["Appeared (1)"]
    assert "`none/own-namespace`" in sections["Disappeared (1)"]
    mentioned = {line.split("`")[1] for line in out.splitlines() if line.startswith(("| `", "- `"))}
    assert mentioned == {"egress/masquerade-rule", "ports/dnat-rule", "host/port-conflict", "usernet/drivers",
                         "none/own-namespace"}


def test_diff_of_identical_runs_passes(tmp_path):
    report = make_report(tmp_path / "r.json", {})
    completed = conformance("diff", report, report)
    assert completed.returncode == 0 and "same outcome" in completed.stdout


def test_tools_reject_a_file_that_is_not_a_report_in_one_line(tmp_path):
    (tmp_path / "junit.xml").write_text("<testsuite/>")
    completed = conformance("diff", tmp_path / "junit.xml", tmp_path / "junit.xml")
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1 and "not a readable JSON report" in completed.stderr


class Rows(HTMLParser):
    def __init__(self):
        super().__init__()
        self.claims, self.links = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-claim" in attrs:
            self.claims.append(attrs["data-claim"])
        if tag == "a":
            self.links.append(attrs["href"])


def test_merge_builds_one_row_per_claim_and_a_column_per_host(tmp_path):
    hosts = (
        ("system", {}, {}),
        ("legacy", {"ports/dnat-rule": "failed"}, {"iptables_variant": "legacy", "engine_variant": "iptables-legacy"}),
        ("no-proxy", {"ports/docker-proxy-per-binding": "skipped"}, {"engine_variant": "userland-proxy-off"}),
    )
    reports = [make_report(tmp_path / name / "report.json", statuses, hostname=name, **info)
               for name, statuses, info in hosts]
    completed = conformance("merge", *reports, "--out", tmp_path / "matrix")
    assert completed.returncode == 0, completed.stderr
    page = (tmp_path / "matrix" / "matrix.html").read_text()
    rows = Rows()
    rows.feed(page)
    assert sorted(rows.claims) == sorted(catalog().claims)
    assert "variant iptables-legacy" in page and "kernel 6.1.0" in page
    targets = {(tmp_path / "matrix" / href).resolve().relative_to(tmp_path).parts[:2] for href in rows.links}
    assert targets == {("system", "evidence"), ("legacy", "evidence"), ("no-proxy", "evidence")}
    markdown = (tmp_path / "matrix" / "matrix.md").read_text()
    assert "| **ports** |" in markdown and markdown.count("**FAILED**") == 1


def test_update_expectations_records_failures_and_keeps_written_reasons(tmp_path):
    first = make_report(tmp_path / "1.json", {"ports/dnat-rule": "failed", "egress/masquerade-rule": "failed"})
    out = tmp_path / "known.yaml"
    completed = conformance("update-expectations", first, "--out", out)
    assert completed.returncode == 0 and "2 added" in completed.stdout
    text = out.read_text().replace("observed in run abc123: AssertionError: it broke", "our patched kernel", 1)
    out.write_text(text)
    second = make_report(tmp_path / "2.json", {"ports/dnat-rule": "failed"})
    completed = conformance("update-expectations", second, "--out", out)
    assert "0 added, 1 removed" in completed.stdout
    written = yaml.safe_load(out.read_text())
    assert list(written["expected"]) == ["ports/dnat-rule"]
    assert written["when"] == {"kernel": "6.1.0", "engine_version": "20.10.24", "iptables_variant": "nf_tables"}


def test_update_expectations_keeps_a_flaky_entry_whatever_one_run_did(tmp_path):
    out = tmp_path / "known.yaml"
    out.write_text("expected:\n  ports/dnat-rule: {status: flaky, reason: it varies}\n")
    passed = make_report(tmp_path / "1.json", {"ports/dnat-rule": "passed"})
    assert conformance("update-expectations", passed, "--out", out).returncode == 0
    kept = yaml.safe_load(out.read_text())["expected"]
    assert kept == {"ports/dnat-rule": {"status": "flaky", "reason": "it varies"}}


needs_chromium = pytest.mark.skipif(not shutil.which("chromium"), reason="needs chromium (bin/selftest installs it)")


def chromium(tmp_path, *args):
    """Headless Chromium on a page, in a profile of its own that reaches nothing: what --dump-dom prints, or
    nothing for --screenshot=FILE (1200 x 800)."""
    return subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", "--no-first-run",
                           f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1200,800", *map(str, args)],
                          capture_output=True, text=True, timeout=120, check=True).stdout


def pixels(png):
    """The rows of an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium's screenshot is), each a list of
    (r, g, b): a PNG reader of a few lines rather than a dependency for one test."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    position, data, header = 8, b"", None
    while position < len(png):
        length, kind = struct.unpack(">I4s", png[position:position + 8])
        chunk = png[position + 8:position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            data += chunk
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    size = 3 if colour == 2 else 4
    raw, stride, previous, rows = zlib.decompress(data), width * size, bytearray(width * size), []
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride) if kind else ():
            a, b = line[x - size] if x >= size else 0, previous[x]
            c = previous[x - size] if x >= size else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, size)])
        previous = line
    return rows


class Cells(HTMLParser):
    """The status cells of the matrix page: (class, text) of each <td>."""

    def __init__(self):
        super().__init__()
        self.cells, self._open = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "td":
            self._open = [dict(attrs)["class"], ""]

    def handle_data(self, data):
        if self._open is not None:
            self._open[1] += data

    def handle_endtag(self, tag):
        if tag == "td":
            self.cells.append(tuple(self._open))
            self._open = None


def glyph(rows, left, top, size):
    """The dark pixels of a square of the screenshot, relative to their own bounding box."""
    ink = {(x, y) for y in range(top, top + size) for x in range(left, left + size) if sum(rows[y][x]) < 3 * 128}
    if not ink:
        return frozenset()
    x0, y0 = min(x for x, _ in ink), min(y for _, y in ink)
    return frozenset((x - x0, y - y0) for x, y in ink)


@needs_chromium
def test_matrix_renders_in_headless_chromium(tmp_path):
    """The page needs no server: Chromium opens the file and its rendered DOM has every claim row."""
    reports = [make_report(tmp_path / name / "report.json", {}, hostname=name) for name in ("a", "b", "c")]
    assert conformance("merge", *reports, "--out", tmp_path / "matrix").returncode == 0
    rendered = chromium(tmp_path, "--dump-dom", (tmp_path / "matrix" / "matrix.html").as_uri())
    rows = Rows()
    rows.feed(rendered)
    assert sorted(rows.claims) == sorted(catalog().claims)
    assert rendered.count("<th>a ") + rendered.count("<th>b ") + rendered.count("<th>c ") == 3


@needs_chromium
def test_a_reader_sees_each_status_as_its_word_and_its_colour(tmp_path):
    """What a browser without an emoji font shows: each status cell holds its word, every character of which
    the page's font draws (none is the empty box of a glyph no font has), on its status's own colour.

    The words are read from the rendered DOM; the glyphs are drawn by Chromium on a page of their own, each
    beside U+10FFFD (private use: in no font), whose box every missing glyph is; the colours are counted in a
    screenshot of the matrix."""
    first = sorted(catalog().claims)
    odd = dict(zip(first, ("failed", "error", "skipped", "xfailed", "xpassed", "absent"), strict=False))
    reports = [make_report(tmp_path / "a" / "report.json", {}), make_report(tmp_path / "b" / "report.json", odd)]
    assert conformance("merge", *reports, "--out", tmp_path / "matrix").returncode == 0
    url = (tmp_path / "matrix" / "matrix.html").as_uri()

    cells = Cells()
    cells.feed(chromium(tmp_path, "--dump-dom", url))
    assert {status for status, _ in cells.cells} == set(matrix.COLOURS)
    assert {(status, " ".join(text.split())) for status, text in cells.cells} == {(s, WORD[s]) for s in matrix.COLOURS}

    chromium(tmp_path, f"--screenshot={tmp_path / 'matrix.png'}", url)
    shown = pixels((tmp_path / "matrix.png").read_bytes())
    counts = {status: sum(row.count(tuple(bytes.fromhex(colour[1:]))) for row in shown)
              for status, colour in matrix.COLOURS.items()}
    assert all(count > 2000 for count in counts.values()), counts  # a cell is some 400 x 27 pixels

    characters = sorted({c for _, text in cells.cells for c in text if not c.isspace()})
    probe, shown = tmp_path / "glyphs.html", ["\U0010fffd", *characters]
    probe.write_text("<!doctype html><meta charset=utf-8><style>body { margin: 40px; } table { border-collapse: "
                     "collapse; } td { width: 48px; height: 48px; padding: 0; text-align: center; font: bold 24px/48px "
                     "system-ui, sans-serif; }</style><table>"
                     + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in shown[i:i + 16]) + "</tr>"
                               for i in range(0, len(shown), 16)) + "</table>", encoding="utf-8")
    chromium(tmp_path, f"--screenshot={tmp_path / 'glyphs.png'}", probe.as_uri())
    drawn = pixels((tmp_path / "glyphs.png").read_bytes())
    missing, *glyphs = (glyph(drawn, 40 + 48 * (i % 16), 40 + 48 * (i // 16), 48) for i in range(len(shown)))
    assert missing, "the probe's reference drew nothing: it cannot tell a missing glyph"
    tofu = [c for c, ink in zip(characters, glyphs, strict=True) if not ink or ink == missing]
    assert not tofu, f"drawn as empty boxes (no font has them): {tofu}"
