"""A test metric against the labelled fraction, per variant, over sweeps that differ in
``data.labelled_fraction`` (:func:`mmrefine.experiments.pretraining.label_curve`): prints the
mean and 95% Student-t interval over seeds at each fraction and plots them as lines with bands.
A variant whose sweep has not recorded every seed it lists yet is left out of that fraction
(named in the output); ``--partial`` keeps it.

    python benchmarks/label_curve.py \\
        configs/reproduction/few_labels_mmbt_mosi_5.yaml:docs/reproduction/few_labels_mmbt_mosi_5 \\
        configs/reproduction/few_labels_mmbt_mosi_10.yaml:docs/reproduction/few_labels_mmbt_mosi_10 \\
        configs/reproduction/few_labels_mmbt_mosi_20.yaml:docs/reproduction/few_labels_mmbt_mosi_20 \\
        --metric test/acc --out docs/reproduction/label_curve_mmbt_mosi.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mmrefine.evaluation.figures import robustness_curves
from mmrefine.evaluation.statistics import confidence_interval
from mmrefine.experiments.pretraining import label_curve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweeps", nargs="+", help="CONFIG:RECORDS pairs (a sweep file and the folder of its runs.jsonl)")
    ap.add_argument("--metric", default="test/acc")
    ap.add_argument("--level", type=float, default=0.95)
    ap.add_argument("--out", type=Path, required=True, help="the PNG to write")
    ap.add_argument("--partial", action="store_true", help="also plot points whose sweep lacks some of its seeds")
    args = ap.parse_args()
    pairs = []
    for item in args.sweeps:
        config, sep, records = item.partition(":")
        if not sep:
            ap.error(f"{item}: expected CONFIG:RECORDS")
        pairs.append((config, records))
    curve = label_curve(pairs, args.metric, partial=args.partial)
    for name, points in ({} if args.partial else label_curve(pairs, args.metric, partial=True)).items():
        for f, values in points.items():
            if f not in curve.get(name, {}):
                print(f"left out (not every seed recorded; --partial keeps it): {name} at {f:g}, {len(values)} seeds")
    lines = {}
    print(f"{args.metric}: mean [{args.level:.0%} interval] over seeds (n)")
    for name, points in curve.items():
        stats = [confidence_interval(v, args.level) for v in points.values()]
        lines[name] = (list(points), [m for m, _ in stats], [h for _, h in stats])
        cells = ", ".join(f"{f:g}: {m:.4f} [{m - h:.4f}, {m + h:.4f}] ({len(v)})"
                          for (f, v), (m, h) in zip(points.items(), stats))
        print(f"  {name}: {cells}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    robustness_curves(lines, args.out, xlabel="labelled fraction of the training split",
                      ylabel=f"{args.metric} ({args.level:.0%} interval)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
