"""Linear probes and unimodal-query retrieval of the fused embedding before and after Refiner
pretraining, for every seed of one pretrained variant of a finished sweep
(:func:`mmrefine.experiments.pretraining.pretraining_probe`). Resumable: one JSON line per
seed in OUT/probe.jsonl; writes OUT/probe.png and prints the table.

    python benchmarks/pretraining_probe.py runs/repro/few_labels_mmbt_mosi_10 \\
        --variant mmbt+refnet+pretrain --out docs/reproduction/pretraining_probe_mmbt_mosi_10
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mmrefine.evaluation.figures import before_after
from mmrefine.evaluation.statistics import mean_std
from mmrefine.experiments.pretraining import pretraining_probe
from mmrefine.experiments.sweep import run_dir_of


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep", type=Path, help="a finished sweep's output folder (holds runs/)")
    ap.add_argument("--variant", required=True, help="a variant with a pretraining stage")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--k", type=int, nargs="+", default=[1], help="retrieval cut-offs")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "probe.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    done = {r["seed"]: r for r in map(json.loads, filter(str.strip, lines))}
    for seed in args.seeds:
        if seed in done:
            continue
        run_dir = run_dir_of(args.sweep, args.variant, seed)
        record = {"variant": args.variant, "seed": seed, "run_dir": str(run_dir), **pretraining_probe(run_dir, args.k)}
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")
        done[seed] = record
    records = [done[s] for s in args.seeds]
    measures: dict[str, dict[str, list[float]]] = {"probe, run's labels": {}, "probe, all labels": {}}
    for r in records:
        for state in ("before", "after"):
            measures["probe, run's labels"].setdefault(state, []).append(r[state]["probe_labelled"])
            measures["probe, all labels"].setdefault(state, []).append(r[state]["probe_all"])
            for m, scores in r[state]["retrieval"].items():
                for k in args.k:
                    measures.setdefault(f"{m} query, top-{k}", {}).setdefault(state, []).append(scores[str(k)])
    print(f"{args.variant}, seeds {args.seeds}: test accuracy, mean ± std (per seed)")
    print(f"{'measure':<24} {'before pretraining':<44} {'after pretraining':<44}")
    for name, per in measures.items():
        cells = [f"{mean_std(per[st])[0]:.3f} ± {mean_std(per[st])[1]:.3f} ({', '.join(f'{v:.3f}' for v in per[st])})"
                 for st in ("before", "after")]
        print(f"{name:<24} {cells[0]:<44} {cells[1]:<44}")
    before_after(measures, args.out / "probe.png", ylabel="test accuracy",
                 title=f"{args.sweep.name}: {args.variant}, before and after pretraining")
    print(f"wrote {path} and {args.out / 'probe.png'}")


if __name__ == "__main__":
    main()
