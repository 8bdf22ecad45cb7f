"""What the machine can do: its fp32 matmul rate and the cost of one small operation,
printed beside measured times.

A time means little without the machine it was taken on; the demo prints these figures
beside its own time and ``benchmarks/transformer_throughput.py`` uses the matmul rate as
the peak. Small models (the demo's) spend most of a step on many small operations, whose
cost is the Python and dispatch overhead the second figure measures, not on matmuls.

    GFLOP/s = 2 n^3 r / t     (r products of two n x n matrices in t seconds; best of the timings)
    small op = t / r          (r additions of two 64 x 64 tensors in t seconds; best of the timings)
"""

from __future__ import annotations

import os
import time

import torch


def matmul_gflops(sizes: tuple[int, ...] = (1024,), flop_per_timing: float = 2e9, repeats: int = 3,
                  dtype: torch.dtype = torch.float32) -> tuple[float, int]:
    """Best GFLOP/s of ``a @ b`` in ``dtype`` (fp32 unless told) over square ``sizes`` (torch's
    current thread count), and the size that reached it. Each timing does about ``flop_per_timing`` operations (3 products
    at least); the
    defaults take about 0.1 s on 2 cores, ``benchmarks/transformer_throughput.py`` asks for more."""
    best, at = 0.0, 0
    for n in sizes:
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
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


def small_op_us(ops: int = 2000, repeats: int = 3) -> float:
    """Best time of one addition of two 64 x 64 fp32 tensors, in microseconds (about 0.03 s)."""
    a, b = torch.randn(64, 64), torch.randn(64, 64)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(ops):
            a + b
        best = min(best, (time.perf_counter() - t0) / ops)
    return best * 1e6


def machine_line() -> str:
    """One line naming the machine's cores, torch threads, fp32 matmul rate and small-op cost."""
    rate, n = matmul_gflops()
    return (f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}, fp32 matmul {rate:.0f} GFLOP/s ({n}x{n}), "
            f"small op {small_op_us():.1f} µs")
