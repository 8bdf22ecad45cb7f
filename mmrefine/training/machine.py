"""What the machine can do: its fp32 matmul rate, printed beside measured times.

A time means little without the machine it was taken on; the demo prints this figure
beside its own time and ``benchmarks/transformer_throughput.py`` uses it as the peak.

    GFLOP/s = 2 n^3 r / t     (r products of two n x n matrices in t seconds; best of the timings)
"""

from __future__ import annotations

import os
import time

import torch


def matmul_gflops(sizes: tuple[int, ...] = (1024,), flop_per_timing: float = 2e9, repeats: int = 3) -> tuple[float, int]:
    """Best fp32 GFLOP/s of ``a @ b`` over square ``sizes`` (torch's current thread count), and
    the size that reached it. Each timing does about ``flop_per_timing`` operations (3 products
    at least); the
    defaults take about 0.1 s on 2 cores, ``benchmarks/transformer_throughput.py`` asks for more."""
    best, at = 0.0, 0
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b  # warm-up
        reps = max(3, int(flop_per_timing // (2 * n**3)))  # at least 3 products per timing
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(reps):
                a @ b
            rate = 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9
            if rate > best:
                best, at = rate, n
    return best, at


def machine_line() -> str:
    """One line naming the machine's cores, torch threads and fp32 matmul rate."""
    rate, n = matmul_gflops()
    return f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}, fp32 matmul {rate:.0f} GFLOP/s ({n}x{n})"
