"""docs/tables.md's suite tables come from committed records: regenerating each report from its
``runs.jsonl`` (``benchmarks/tables_suite.py --report``) gives the committed ``report.md``, and
the targets table says what the docs say."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITES = sorted(p for p in (ROOT / "docs" / "tables" / "suite").glob("*") if (p / "runs.jsonl").is_file())


def _suite_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("tables_suite", ROOT / "benchmarks" / "tables_suite.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_the_suite_was_run_on_two_tables() -> None:
    assert {p.name for p in SUITES} >= {"clothing", "clothing_rating"}


@pytest.mark.parametrize("suite", SUITES, ids=lambda p: p.name)
def test_committed_suite_reports_regenerate_from_their_records(suite: Path) -> None:
    report = _suite_module().report(suite)
    assert report == (suite / "report.md").read_text(), f"regenerate: python benchmarks/tables_suite.py --out {suite} --report"
    tables_md = (ROOT / "docs" / "tables.md").read_text()
    targets = report[report.index("#### Targets"):]
    for line in targets.splitlines():
        if line.startswith("| ") and "%" in line.split("|")[1]:
            assert line in tables_md, f"docs/tables.md does not show the targets row: {line}"
