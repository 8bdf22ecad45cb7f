"""Unimodal and fused test performance of a simple late-fusion baseline per dataset.

For each dataset config, fits the config once with all modalities (late fusion)
and once per single modality (same encoder and head), seed 0, and prints a
Markdown table. Also reports how long loading the data takes.

    python benchmarks/dataset_baselines.py [--epochs N] [--only mfeat mosi stocks lattice]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mmrefine.config import load_config
from mmrefine.logging_setup import quiet_lightning
from mmrefine.training.builders import build_datamodule
from mmrefine.training.engine import fit

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# dataset -> (config, subset key, metric, modalities for the unimodal rows, extra overrides)
DATASETS = {
    "mfeat": ("mfeat.yaml", "views", "test/acc", ["fou", "fac", "kar", "pix", "zer", "mor"], []),
    "mosi": ("mosi.yaml", "modalities", "test/acc", ["text", "audio", "video"], []),
    "mosi_minilm": ("mosi.yaml", "modalities", "test/acc", ["text"], ["data.text_features=minilm"]),
    "stocks": ("stocks_fnb.yaml", "tickers", "test/mse", ["MCD", "SBUX", "YUM"], []),
    "lattice": ("lattice.yaml", "modalities", "test/acc", ["function", "position"], []),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--only", nargs="+", default=list(DATASETS))
    ap.add_argument("--out", default="runs/dataset_baselines")
    ap.add_argument("--show-val", action="store_true", help="also print the validation score of the selected checkpoint")
    args = ap.parse_args()
    quiet_lightning()
    print("| dataset | modalities | metric | value | fit s |")
    print("|---|---|---|---|---|")
    for name in args.only:
        cfg_file, key, metric, singles, extra = DATASETS[name]
        base = load_config(CONFIGS / cfg_file, extra)
        t0 = time.perf_counter()
        build_datamodule(base).setup()
        print(f"| {name} | (load data) | - | - | {time.perf_counter() - t0:.1f} |", flush=True)
        for subset in [None, *[[m] for m in singles]]:
            over = [*extra, f"run_dir={args.out}/{name}/{'all' if subset is None else subset[0]}", "trainer.progress_bar=false"]
            if args.epochs:
                over.append(f"trainer.max_epochs={args.epochs}")
            if subset is not None:
                over.append(f"data.{key}=[{subset[0]}]")
                if name == "stocks":
                    over.append("data.sector=null")
            cfg = load_config(CONFIGS / cfg_file, over)
            t0 = time.perf_counter()
            res = fit(cfg, overwrite=True)
            val = f" (val {res.val[metric.replace('test/', 'val/')]:.4f})" if args.show_val else ""
            label = "all (late fusion)" if subset is None else subset[0]
            print(f"| {name} | {label} | {metric} | {res.test[metric]:.4f}{val} | {time.perf_counter() - t0:.1f} |", flush=True)


if __name__ == "__main__":
    main()
