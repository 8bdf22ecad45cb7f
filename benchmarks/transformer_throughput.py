"""Training-step throughput of the transformer architectures against this machine's matmul peak.

On a sequence task (the daily stock-return windows of ``configs/stocks_fnb.yaml``: three
tickers, windows of 32 days, next-week volatility of MCD), one training step (forward,
backward, AdamW) of MulT, UCRN and the early-fusion transformer at width ``--d``. FLOPs
of forward + backward are counted with ``torch.utils.flop_counter`` (attention through
``scaled_dot_product_attention``, which every attention block here uses); the step time
is the median of ``--steps`` steps (best of ``--repeats``, and of ``--rounds`` passes over all cases). The matmul peak is measured
in the same run, same threads: the best of square fp32 matmuls of sizes 256..2048.
Prints achieved GFLOP/s and its fraction of the peak.

Each measurement runs in a fresh process; ``--allocator default keep`` measures each model
with glibc's default allocation thresholds and with freed memory kept for reuse
(:mod:`mmrefine.training.allocator`, what every fit does), alternating; ``--attention fused
composed`` measures the fast masks' attention in one autograd function and as autograd
composes it (the form before it); ``--relu-dropout fused composed`` the same for the
feed-forward's ReLU and its dropout (``mmrefine.core.dropout.relu_dropout``); ``--precision
32 bf16`` measures each model in fp32 and under bf16 autocast (what ``trainer.precision:
bf16-mixed`` does: matmuls in bfloat16, weights, optimiser and loss in fp32), against the
fp32 peak and, in its own column, the bf16 matmul peak.

    python benchmarks/transformer_throughput.py [--d 128] [--batch 256] [--threads 2] [--masks torch fast] [--allocator default keep]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from itertools import product
from types import SimpleNamespace

import torch
from plain_step import plain_step
from torch.utils.flop_counter import FlopCounterMode

from mmrefine.config import load_config
from mmrefine.core import dropout
from mmrefine.models import transformer
from mmrefine.training.allocator import keep_freed_memory
from mmrefine.training.builders import build_datamodule, build_model, build_task
from mmrefine.training.machine import matmul_gflops

TICKERS = ["MCD", "SBUX", "YUM"]


def matmul_peak(repeats: int = 5, dtype: torch.dtype = torch.float32) -> tuple[float, int]:
    """Best GFLOP/s of ``a @ b`` in ``dtype`` over square sizes (about 20 GFLOP per timing), and the size that reached it."""
    return matmul_gflops(sizes=(256, 512, 1024, 2048), flop_per_timing=2e10, repeats=repeats, dtype=dtype)


def architectures(d: int, layers: int, attn_dropout: float | None = None, masks: str = "torch") -> dict[str, dict]:
    heads = 8 if d % 8 == 0 else 1
    extra = ({} if attn_dropout is None else {"attn_dropout": attn_dropout}) | ({"fast_dropout": True} if masks == "fast" else {})
    return {
        "mult": {"name": "mult", "d": d, "heads": heads, "layers": layers, **extra},
        "ucrn": {"name": "ucrn", "d": d, "heads": heads, "layers": layers, "cross_layers": layers, **extra},
        "early_fusion": {"name": "early_fusion_transformer", "d": d, "heads": heads, "layers": layers, **extra},
    }


def measure(arch: dict, batch_size: int, steps: int, repeats: int, compiled: bool = False,
            precision: str = "32") -> tuple[int, float, int]:
    cfg = load_config("configs/stocks_fnb.yaml", data={"data": {"sector": None, "tickers": TICKERS, "batch_size": batch_size},
                                                      "model": {"architecture": arch}})
    torch.manual_seed(0)
    dm = build_datamodule(cfg)
    task = build_task(cfg, dm)
    model = build_model(cfg, dm.schema, task).train()
    batch = dm.splits["train"].__getitems__(list(range(batch_size)))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    run = torch.compile(model) if compiled else model

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            plain_step(run, task, opt, batch)

    with FlopCounterMode(display=False) as counter:
        plain_step(model, task, opt, batch)  # counted eagerly in fp32: the same arithmetic
    flops = counter.get_total_flops()
    best = float("inf")
    for _ in range(repeats):
        for _ in range(3):
            step()
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        best = min(best, statistics.median(times))
    return flops, best, sum(p.numel() for p in model.parameters())


def measure_apart(allocator: str, attention: str, relu: str, threads: int, *args) -> tuple[int, float, int]:  # noqa: ANN002
    """:func:`measure` in this fresh process, with ``allocator``'s thresholds, ``attention``'s
    dropped-attention core, ``relu``'s ReLU with dropout and ``threads`` threads."""
    if attention == "composed":
        dropout._DroppedAttention = SimpleNamespace(apply=dropout.composed_attention)
    if relu == "composed":
        transformer.relu_dropout = lambda x, p, training: dropout.fast_dropout(torch.relu(x), p, training)
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    if allocator == "keep" and not keep_freed_memory():
        raise SystemExit("--allocator keep needs glibc (Linux)")
    return measure(*args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--compile", action="store_true", help="also time each model under torch.compile")
    ap.add_argument("--attn-dropout", type=float, nargs="+", default=[None],
                    help="dropout on the attention weights to measure (default: each model's own, 0.1)")
    ap.add_argument("--masks", nargs="+", default=["torch"], choices=["torch", "fast"],
                    help="dropout masks: torch's, or the models' fast_dropout sampler (mmrefine.core.dropout)")
    ap.add_argument("--allocator", nargs="+", default=["keep"], choices=["default", "keep"],
                    help="glibc's default thresholds, or freed memory kept for reuse as every fit does (mmrefine.training.allocator)")
    ap.add_argument("--models", nargs="+", default=["mult", "ucrn", "early_fusion"], choices=["mult", "ucrn", "early_fusion"])
    ap.add_argument("--rounds", type=int, default=1, help="measure every case this many times, in turn; report the best")
    ap.add_argument("--attention", nargs="+", default=["fused"], choices=["fused", "composed"],
                    help="with fast masks, the dropped attention in one autograd function (fused) or as autograd composes it")
    ap.add_argument("--relu-dropout", nargs="+", default=["fused"], choices=["fused", "composed"],
                    help="with fast masks, the feed-forward's ReLU and dropout in one autograd function (fused) or composed")
    ap.add_argument("--precision", nargs="+", default=["32"], choices=["32", "bf16"],
                    help="fp32, or bf16 autocast as trainer.precision: bf16-mixed (matmuls in bfloat16)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    peak, size = matmul_peak()
    print(f"stocks windows ({', '.join(TICKERS)}: 3 x (32, 1)), batch={args.batch}, d={args.d}, layers={args.layers}, "
          f"{args.threads} thread(s)")
    print(f"matmul peak: {peak:.1f} GFLOP/s (fp32, {size}x{size})")
    if "bf16" in args.precision:
        bf16_peak, bf16_size = matmul_peak(dtype=torch.bfloat16)
        print(f"matmul peak: {bf16_peak:.1f} GFLOP/s (bf16, {bf16_size}x{bf16_size}; {bf16_peak / peak:.2f}x fp32's)")
    cases = []  # (label, arch, allocator, attention, relu, compiled, precision)
    for p in args.attn_dropout:
        for name in args.models:
            for masks in args.masks:
                arch = architectures(args.d, args.layers, p, masks)[name]
                attentions = args.attention if masks == "fast" else ["fused"]
                relus = args.relu_dropout if masks == "fast" else ["fused"]
                for compiled, alloc, attention, relu, prec in product((False, True) if args.compile else (False,), args.allocator,
                                                                      attentions, relus, args.precision):
                    label = (name + (" compiled" if compiled else "") + ("" if p is None else f" attn_dropout={p:g}")
                             + (" fast masks" if masks == "fast" else "")
                             + ("" if len(args.allocator) == 1 else f" {alloc} alloc")
                             + ("" if len(attentions) == 1 else f" {attention}")
                             + ("" if len(relus) == 1 else f" relu {relu}")
                             + ("" if prec == "32" else " bf16"))
                    cases.append((label, arch, alloc, attention, relu, compiled, prec))
    best: dict[str, tuple[int, float, int]] = {}
    for _ in range(args.rounds):  # every case once per round, so that a slow spell of the machine hits all of them
        for label, arch, alloc, attention, relu, compiled, prec in cases:
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                got = pool.submit(measure_apart, alloc, attention, relu, args.threads, arch, args.batch, args.steps, args.repeats,
                                  compiled, prec).result()
            if label not in best or got[1] < best[label][1]:
                best[label] = got
    bf16 = "bf16" in args.precision
    print(f"{'model':<44} {'params':>9} {'GFLOP/step':>11} {'ms/step':>9} {'GFLOP/s':>9} {'of peak':>8}"
          + (f" {'of bf16 peak':>13}" if bf16 else ""))
    for label, (flops, sec, params) in best.items():
        rate = flops / sec / 1e9
        print(f"{label:<44} {params:>9,} {flops / 1e9:>11.3f} {1000 * sec:>9.1f} {rate:>9.1f} {rate / peak:>8.1%}"
              + (f" {rate / bf16_peak:>13.1%}" if bf16 else ""))

if __name__ == "__main__":
    main()
