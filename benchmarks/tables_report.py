"""Markdown tables of a table-data sweep: F1, PR-AUC, ROC-AUC, accuracy and macro-F1 per variant.

Reads ``runs.jsonl`` of one or more sweep folders (``mmrefine sweep`` output) and prints,
per folder, mean ± std over seeds of each test metric and Welch's p of F1 against
``--baseline`` (default: the sweep's first variant). With ``--baselines FILE`` it appends the
rows written by ``benchmarks/tables_baselines.py``.

    python benchmarks/tables_report.py runs/tables/clothing_combiners runs/tables/clothing_no_rating
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mmrefine.evaluation.statistics import compare, mean_std
from mmrefine.experiments.sweep import read_records

METRICS = [("f1", "F1"), ("pr_auc", "PR-AUC"), ("roc_auc", "ROC-AUC"), ("acc", "accuracy"), ("f1_macro", "macro-F1")]


def fmt(xs: list[float]) -> str:
    m, s = mean_std(xs)
    return f"{m:.3f} ± {s:.3f}"


def table(records: list[dict], baseline: str | None) -> list[str]:
    by: dict[str, list[dict]] = {}
    for r in records:
        by.setdefault(r["variant"], []).append(r)
    baseline = baseline if baseline in by else next(iter(by))
    p = {c.name: c.p_value for c in compare({v: [r["test"]["test/f1"] for r in rs] for v, rs in by.items()}, baseline)}
    lines = ["| variant | seeds | " + " | ".join(name for _, name in METRICS) + f" | p (F1 vs {baseline}) |",
             "|---|---|" + "---|" * len(METRICS) + "---|"]
    for v, rs in by.items():
        cells = [fmt([r["test"][f"test/{k}"] for r in rs]) for k, _ in METRICS]
        pv = "-" if p[v] != p[v] else f"{p[v]:.3f}"
        lines.append(f"| {v} | {len(rs)} | " + " | ".join(cells) + f" | {pv} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--baseline")
    ap.add_argument("--baselines", help="JSON lines from benchmarks/tables_baselines.py")
    args = ap.parse_args()
    for folder in args.folders:
        print(f"\n### `{folder}`\n")
        print("\n".join(table(read_records(folder), args.baseline)))
    if args.baselines:
        records = [json.loads(line) for line in Path(args.baselines).read_text().splitlines() if line.strip()]
        print("\n### scikit-learn baselines\n")
        print("\n".join(table(records, None)))


if __name__ == "__main__":
    main()
