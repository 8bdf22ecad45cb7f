"""Forward cost of ProgressiveFusion with R unrolled steps relative to its base model.

Counts FLOPs exactly (``torch.utils.flop_counter``) and times the forward pass
(fastest of several medians, variants interleaved) for R = 1..4 around a GMU
model on UCI Multiple Features. Prints ratios only.

    python benchmarks/progressive_cost.py [--batch 256] [--steps 100]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from mmrefine.config import load_config
from mmrefine.training.builders import build_datamodule, build_model, build_task


def forward_time(model: torch.nn.Module, batch, steps: int) -> float:
    times = []
    with torch.no_grad():
        for _ in range(steps):
            t0 = time.perf_counter()
            model(batch.inputs, batch.mask)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def flops(model: torch.nn.Module, batch) -> int:
    with FlopCounterMode(display=False) as c, torch.no_grad():
        model(batch.inputs, batch.mask)
    return c.get_total_flops()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    models = {}
    for r in (0, 1, 2, 3, 4):
        prog = None if r == 0 else {"steps": r, "backprojection": "linear", "inject_at": "net.2"}
        cfg = load_config("configs/mfeat.yaml", data={"model": {"fusion": {"name": "gmu", "out_dim": 128}, "progressive": prog}})
        torch.manual_seed(0)
        dm = build_datamodule(cfg)
        models["base" if r == 0 else f"R={r}"] = build_model(cfg, dm.schema, build_task(cfg, dm)).eval()
    batch = dm.splits["test"].__getitems__(list(range(args.batch)))
    times = {k: [] for k in models}
    for _ in range(args.repeats):
        for k, m in models.items():
            times[k].append(forward_time(m, batch, args.steps))
    f = {k: flops(m, batch) for k, m in models.items()}
    print(f"GMU on mfeat, batch={args.batch}, forward only, 1 thread")
    print(f"{'model':<6} {'FLOPs / base':>12} {'time / base':>12}")
    for k in models:
        print(f"{k:<6} {f[k] / f['base']:>12.3f} {min(times[k]) / min(times['base']):>12.3f}")


if __name__ == "__main__":
    main()
