"""docs/reproduction.md: every claim has a verdict, and every committed sweep record turns back
into the committed report (so the numbers quoted come from the records)."""

import re
import shutil
from pathlib import Path

import pytest

from mmrefine.experiments.demo import study_verdicts
from mmrefine.experiments.report import write_report

DOCS = Path(__file__).resolve().parents[1] / "docs"
SWEEPS = sorted(p.parent for p in (DOCS / "reproduction").glob("*/runs.jsonl"))


def test_every_claim_has_a_verdict() -> None:
    rows = study_verdicts(DOCS / "reproduction.md")
    assert [int(n) for n, _, _ in rows] == list(range(1, 10))
    for n, claim, verdict in rows:
        assert verdict and "pending" not in verdict.lower(), (n, claim, verdict)


@pytest.mark.parametrize("sweep", SWEEPS, ids=[p.name for p in SWEEPS])
def test_committed_records_regenerate_the_committed_report(sweep: Path, tmp_path: Path) -> None:
    committed = (sweep / "report.md").read_text()
    m = re.search(r"Test `([^`]+)`, mean ± std over seeds; p: Welch's t-test against `([^`]+)`", committed)
    assert m, f"{sweep}/report.md is not a sweep report"
    copy = tmp_path / sweep.name
    copy.mkdir()
    shutil.copy(sweep / "runs.jsonl", copy / "runs.jsonl")
    fresh = write_report(copy, baseline=m.group(2), metric=m.group(1)).read_text()
    strip = lambda text: text.split("\n", 1)[1]  # noqa: E731 - the first line names the folder
    assert strip(fresh) == strip(committed)
