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


PROBES = {  # the before / after pretraining tables: (fraction, seeds, modalities)
    "mosi_10": (10, [0, 1, 2, 3, 4], ("text", "audio", "video")),
    "mosi_5": (5, [0, 1, 2, 3, 4], ("text", "audio", "video")),
    "clothing_5": (5, [0, 1, 2, 3, 4], ("title", "review_text", "categorical", "numerical")),
}


@pytest.mark.parametrize("cell", list(PROBES))
def test_the_pretraining_probe_table_comes_from_its_records(cell: str) -> None:
    """docs/reproduction.md's before / after pretraining tables (MMBT on MOSI and on the
    clothing table) are the mean ± std of the committed probe.jsonl records
    (benchmarks/pretraining_probe.py)."""
    import json

    from mmrefine.evaluation.statistics import mean_std

    text = (DOCS / "reproduction.md").read_text()
    mean_pm_std = lambda vals: "{:.3f} ± {:.3f}".format(*mean_std(vals))  # noqa: E731
    fraction, seeds, modalities = PROBES[cell]
    path = DOCS / "reproduction" / f"pretraining_probe_mmbt_{cell}" / "probe.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    assert sorted(r["seed"] for r in records) == seeds
    rows = {f"probe fit on the run's {fraction}% of the labels": lambda r, st: r[st]["probe_labelled"],
            "probe fit on every training label": lambda r, st: r[st]["probe_all"]}
    rows.update({f"{m} query, top-1": (lambda r, st, m=m: r[st]["retrieval"][m]["1"]) for m in modalities})
    for name, get in rows.items():
        row = f"| {name} | {mean_pm_std([get(r, 'before') for r in records])} | {mean_pm_std([get(r, 'after') for r in records])}"
        assert row in text, row

CURVES = {  # the accuracy-vs-labels tables of the fine-tuned-transformer study: (fractions per variant, metric, scale)
    "mosi": ({"mmbt": (5, 10, 20, 100), "mmbt+refnet+pretrain": (5, 10, 20, 100), "mmbt+refnet+joint": (5, 10, 20),
              "mmbt+refnetms+pretrain": (5, 10, 20, 100)}, "test/acc", 100.0, "{:.1f}"),
    "clothing": ({"mmbt": (5, 10, 20, 100), "mmbt+refnet+pretrain": (5, 10, 20, 100), "mmbt+refnet+joint": (5, 10, 20),
                  "mmbt+refnetms+pretrain": (5, 10, 20)}, "test/f1", 1.0, "{:.3f}"),
}


@pytest.mark.parametrize("dataset", list(CURVES))
def test_the_label_curve_table_comes_from_the_committed_sweeps(dataset: str) -> None:
    """The accuracy-vs-labels table of the fine-tuned-transformer study: mean [95% interval]
    of the committed records at each fraction (benchmarks/label_curve.py)."""
    from mmrefine.evaluation.statistics import confidence_interval
    from mmrefine.experiments.pretraining import label_curve

    fractions, metric, scale, fmt = CURVES[dataset]
    configs = DOCS.parent / "configs" / "reproduction"
    cells = sorted({f for fs in fractions.values() for f in fs})
    curve = label_curve([(configs / f"few_labels_mmbt_{dataset}_{f}.yaml", DOCS / "reproduction" / f"few_labels_mmbt_{dataset}_{f}")
                         for f in cells], metric)
    names = {"mmbt": "MMBT", "mmbt+refnet+pretrain": "+ ReFNet, pretrained", "mmbt+refnet+joint": "+ ReFNet, joint",
             "mmbt+refnetms+pretrain": "+ ReFNetMS, pretrained"}
    text = (DOCS / "reproduction.md").read_text()
    assert set(curve) == set(fractions)
    for variant, points in curve.items():
        assert list(points) == [f / 100 for f in fractions[variant]] and all(len(v) == 5 for v in points.values())
        row = []
        for f in cells:
            if f / 100 not in points:
                row.append("-")
                continue
            m, h = confidence_interval([scale * v for v in points[f / 100]])
            row.append(f"{fmt.format(m)} [{fmt.format(m - h)}, {fmt.format(m + h)}]")
        line = f"| {names[variant]} | " + " | ".join(row) + " |"
        assert line in text, line
