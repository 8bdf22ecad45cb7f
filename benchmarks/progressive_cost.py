"""Forward cost of Progressive Fusion with R unrolled steps relative to its base model.

Counts FLOPs exactly (``torch.utils.flop_counter``) and times the forward pass
(fastest of several medians, variants interleaved) for R = 1..4 around the model
chosen with ``--model``: a GMU on UCI Multiple Features (back-projection into the
encoders), or an architecture on CMU-MOSI (back-projection added to each modality's
input, or, for MMBT, to its token embeddings): MulT, UCRN, the early-fusion
transformer, MMBT on MiniLM. Prints ratios only.

    python benchmarks/progressive_cost.py [--model gmu|mult|ucrn|early_fusion|mmbt|all] [--batch 256] [--steps 100]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from mmrefine.config import load_config
from mmrefine.training.builders import build_datamodule, build_model, build_task

# (experiment file, overrides, Progressive Fusion's extra keys): the settings of the reproduction sweeps
SETUPS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "gmu": ("configs/mfeat.yaml", {"model": {"fusion": {"name": "gmu", "out_dim": 128}}}, {"inject_at": "net.2"}),
    "mult": ("configs/mosi.yaml", {"model": {"architecture": {"name": "mult", "d": 30, "heads": 5, "layers": 2,
                                                              "vectors_as_sequences": True}}}, {}),
    "ucrn": ("configs/mosi.yaml", {"model": {"architecture": {"name": "ucrn", "d": 30, "heads": 3, "layers": 2, "cross_layers": 2}}}, {}),
    "early_fusion": ("configs/mosi.yaml", {"model": {"architecture": {"name": "early_fusion_transformer", "d": 64, "heads": 4,
                                                                      "layers": 2}}}, {}),
    "mmbt": ("configs/mmbt_mosi.yaml", {}, {}),
}


def forward_time(model: torch.nn.Module, batch, steps: int) -> float:
    times = []
    with torch.no_grad():
        for _ in range(steps):
            t0 = time.perf_counter()
            model(batch.inputs, batch.mask)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def flops(model: torch.nn.Module, batch) -> int:
    """Forward FLOPs. Counted with autograd on: without it PyTorch's fused inference path of
    ``nn.TransformerEncoderLayer`` runs, whose arithmetic the counter does not see."""
    with FlopCounterMode(display=False) as c, torch.enable_grad():
        model(batch.inputs, batch.mask)
    return c.get_total_flops()


def measure(name: str, batch_size: int, steps: int, repeats: int, max_steps: int) -> None:
    path, over, extra = SETUPS[name]
    models = {}
    for r in range(max_steps + 1):
        prog = None if r == 0 else {"steps": r, "backprojection": "linear", **extra}
        cfg = load_config(path, data={**over, "model": {**over.get("model", {}), "progressive": prog}})
        torch.manual_seed(0)
        dm = build_datamodule(cfg)
        models["base" if r == 0 else f"R={r}"] = build_model(cfg, dm.schema, build_task(cfg, dm)).eval()
    split = dm.splits["test"]
    batch = split.__getitems__(list(range(min(batch_size, len(split)))))
    times = {k: [] for k in models}
    for _ in range(repeats):
        for k, m in models.items():
            times[k].append(forward_time(m, batch, steps))
    f = {k: flops(m, batch) for k, m in models.items()}
    print(f"\n{name} ({path}), batch={len(split) if batch_size > len(split) else batch_size}, forward only, "
          f"{torch.get_num_threads()} thread(s)")
    print(f"{'model':<6} {'FLOPs / base':>12} {'time / base':>12}")
    for k in models:
        print(f"{k:<6} {f[k] / f['base']:>12.3f} {min(times[k]) / min(times['base']):>12.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=[*SETUPS, "all"], default="gmu")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--max-steps", type=int, default=4, help="largest R")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    for name in SETUPS if args.model == "all" else [args.model]:
        measure(name, args.batch, args.steps, args.repeats, args.max_steps)


if __name__ == "__main__":
    main()
