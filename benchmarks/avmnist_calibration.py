"""Calibrate and measure AV-MNIST built from MNIST + FSDD (docs/datasets.md).

Image-only accuracy depends on ``pca_components`` alone, audio-only accuracy on
``snr_db`` alone; fused accuracy on both. For every value in ``--pca`` the
image-only model is fitted (noise at the first ``--snr-db``), for every value in
``--snr-db`` the audio-only model (images at the first ``--pca``), and the
late-fusion model for every pair, each for every seed in ``--seeds``, with
``configs/avmnist.yaml``. Prints a Markdown table (mean and std over seeds of
test accuracy) and each build's time.

    python benchmarks/avmnist_calibration.py --pca 4 --snr-db 3 --seeds 0 1 2 [--only image audio fused]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from mmrefine.config import load_config
from mmrefine.data.avmnist_build import AVMNISTRecipe, build
from mmrefine.data.paths import resolve_data_root
from mmrefine.logging_setup import quiet_lightning
from mmrefine.training.engine import fit

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "avmnist.yaml"


def run(mods: list[str], pca: int, snr: float, seed: int, args: argparse.Namespace) -> float:
    over = [f"seed={seed}", f"data.pca_components={pca}", f"data.snr_db={snr}", f"data.modalities=[{','.join(mods)}]",
            f"run_dir={args.out}/{'-'.join(mods)}_k{pca}_snr{snr}_s{seed}", "trainer.progress_bar=false",
            f"trainer.accelerator={args.accelerator}", f"trainer.max_epochs={args.epochs}"]
    if args.data_root:
        over.append(f"data.root={args.data_root}")
    if args.cache_dir:
        over.append(f"data.cache_dir={args.cache_dir}")
    over += [f"model.encoders.{m}=null" for m in ("image", "audio") if m not in mods]
    cfg = load_config(CONFIG, over)
    return float(fit(cfg, overwrite=True).test["test/acc"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pca", type=int, nargs="+", default=[4])
    ap.add_argument("--snr-db", type=float, nargs="+", default=[AVMNISTRecipe.snr_db])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--accelerator", default="cpu")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--out", default="runs/avmnist_calibration")
    ap.add_argument("--only", nargs="+", choices=["image", "audio", "fused"], default=["image", "audio", "fused"])
    args = ap.parse_args()
    quiet_lightning()
    root = resolve_data_root(args.data_root)
    jobs = [(["image"], k, args.snr_db[0]) for k in args.pca] * ("image" in args.only)
    jobs += [(["audio"], args.pca[0], s) for s in args.snr_db] * ("audio" in args.only)
    jobs += [(["image", "audio"], k, s) for k in args.pca for s in args.snr_db] * ("fused" in args.only)
    print("| modalities | pca_components | snr_db | test acc (mean ± std) | seeds | build s | fit s |")
    print("|---|---|---|---|---|---|---|")
    for mods, k, s in jobs:
        _, meta = build(root, AVMNISTRecipe(pca_components=k, snr_db=s), args.cache_dir)
        build_s = "cached" if meta["reused"] else f"{meta['build_seconds']:.1f}"
        t0 = time.perf_counter()
        accs = [run(mods, k, s, seed, args) for seed in args.seeds]
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        print(f"| {'+'.join(mods)} | {k} | {s:g} | {100 * statistics.mean(accs):.1f} ± {100 * sd:.1f} | {len(accs)} | {build_s} "
              f"| {(time.perf_counter() - t0) / len(accs):.0f} |", flush=True)


if __name__ == "__main__":
    main()
