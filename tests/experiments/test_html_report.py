"""`mmrefine report --html`: one self-contained page per sweep, checked in a real headless browser."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from mmrefine.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table of ``text`` as rows of cells (header first)."""
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            if not re.fullmatch(r"\|(---\|)+", line):
                current.append([c.strip() for c in line.strip("|").split("|")])
        elif current:
            tables.append(current)
            current = []
    return tables + ([current] if current else [])


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    playwright = pytest.importorskip("playwright.sync_api", reason="the HTML report test drives a browser with playwright")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's chromium (apt-get install chromium) to run the browser test")
    with playwright.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.mark.slow
def test_the_html_report_renders_its_charts_and_shows_the_markdown_numbers(tracked_sweep: Path, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "sweep"
    shutil.copytree(tracked_sweep, out, ignore=shutil.ignore_patterns("mlflow.db", "mlartifacts"))
    assert main(["report", str(out), "--html"]) == 0
    md = (out / "report.md").read_text()
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto((out / "report.html").resolve().as_uri())
    assert [u for u in requests if not u.startswith("file:")] == []  # self-contained: nothing fetched
    # every chart is drawn, with a size, and the per-variant chart holds one mark per variant with the table's mean
    charts = page.locator("svg.chart")
    assert charts.count() >= 4  # results, validation curve, training loss, missing modalities
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 100
    tables = markdown_tables(md)
    results = {row[0]: row[2] for row in tables[0][1:]}  # variant -> "mean ± std"
    marks = page.locator("svg.chart").first.locator(".bar")
    assert marks.count() == 2
    for i in range(2):
        mark = marks.nth(i)
        assert results[mark.get_attribute("data-group")] == f"{mark.get_attribute('data-mean')} ± {mark.get_attribute('data-std')}"
    curves = page.locator("polyline.curve")
    assert curves.count() == 4 and {curves.nth(i).get_attribute("data-series") for i in range(4)} == {"concat", "gmu"}
    # the tables show exactly the Markdown's cells
    shown = page.locator("table").evaluate_all("ts => ts.map(t => [...t.rows].map(r => [...r.cells].map(c => c.textContent.trim())))")
    assert shown == tables
    # a click on a header sorts by that column, numbers by value
    first = page.locator("table").first
    first.locator("th", has_text="test/acc").click()
    values = [float(c.split(" ± ")[0]) for c in first.evaluate("t => [...t.tBodies[0].rows].map(r => r.cells[2].textContent)")]
    assert values == sorted(values)
    first.locator("th", has_text="test/acc").click()
    values = [float(c.split(" ± ")[0]) for c in first.evaluate("t => [...t.tBodies[0].rows].map(r => r.cells[2].textContent)")]
    assert values == sorted(values, reverse=True)
    page.close()


def test_html_is_for_sweeps(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("seed: 0\n")
    (run / "metrics.json").write_text('{"best_checkpoint": "", "val": {}, "test": {}}')
    assert main(["report", str(run), "--html"]) == 2
    assert "--html is for a sweep directory" in capsys.readouterr().err
