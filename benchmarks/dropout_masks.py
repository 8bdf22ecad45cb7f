"""Cost of a dropout layer on the CPU: torch's ``F.dropout`` against :func:`mmrefine.core.dropout.fast_dropout`.

Forward and backward of one dropout on a float32 tensor shaped like a small transformer's
activations (``--shape``, default 128 x 96 x 512: batch, tokens, feed-forward width), and the
mask sampling alone (``bernoulli_`` against the 16-bit draws). Median of ``--steps`` timings,
both in the same run and threads; prints the times and their ratio.

    python benchmarks/dropout_masks.py [--threads 2] [--p 0.1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F

from mmrefine.core.dropout import fast_dropout


def median_ms(fn: Callable[[], object], steps: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs="+", default=[128, 96, 512])
    ap.add_argument("--p", type=float, default=0.1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.randn(*args.shape, requires_grad=True)
    n = x.numel()

    def step(drop: Callable[[torch.Tensor, float], torch.Tensor]) -> Callable[[], None]:
        def run() -> None:
            x.grad = None
            drop(x, args.p).sum().backward()
        return run

    words = torch.empty((n + 3) // 4, dtype=torch.int64)
    rows = [
        ("mask: torch bernoulli_", median_ms(lambda: torch.empty(args.shape).bernoulli_(1 - args.p), args.steps)),
        ("mask: 16-bit draws", median_ms(lambda: words.random_(torch.iinfo(torch.int64).min, None), args.steps)),
        ("dropout fwd+bwd: F.dropout", median_ms(step(lambda t, p: F.dropout(t, p, True)), args.steps)),
        ("dropout fwd+bwd: fast_dropout", median_ms(step(fast_dropout), args.steps)),
        ("no dropout (sum, backward)", median_ms(step(lambda t, p: t), args.steps)),
    ]
    print(f"shape {tuple(args.shape)} ({n:,} floats), p={args.p}, {args.threads} thread(s), median of {args.steps}")
    for name, ms in rows:
        print(f"{name:<32} {ms:>8.2f} ms")
    print(f"ratio, masks: {rows[0][1] / rows[1][1]:.2f}x; dropout fwd+bwd: {rows[2][1] / rows[3][1]:.2f}x")


if __name__ == "__main__":
    main()
