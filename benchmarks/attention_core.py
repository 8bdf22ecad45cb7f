"""The cost of the large tensors in a small transformer's step on the CPU: glibc's allocation
thresholds (:mod:`mmrefine.training.allocator`) and the dropped-attention core
(``mmrefine.core.dropout._DroppedAttention`` against autograd's composed form).

For tensors shaped like the early-fusion transformer's attention matrices in
``benchmarks/transformer_throughput.py`` (batch 128, 8 heads, 97 tokens, heads of 16), in a
fresh process per allocator setting (``default``: glibc's thresholds; ``keep``: freed memory
kept for reuse, as every fit does), the best of ``--rounds`` medians of ``--steps`` timings of:
a product of two ``B x h x L x L`` tensors into a new tensor and into an existing one, a
softmax, and the forward and backward of dropped attention (``p = 0.1``) composed by autograd
(``fast_dropout(softmax(Q K^T / sqrt(d_h)), p) V``) and in one autograd function; and, on the
feed-forward's ``(128, 97, 512)`` hidden layer, ReLU with its dropout composed
(``fast_dropout(relu(x), p)``) and in one function (``relu_dropout``). Prints milliseconds and,
per setting, the ratios composed / one function.

    python benchmarks/attention_core.py [--threads 2] [--rounds 5] [--steps 8]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Callable

import torch

from mmrefine.core import dropout
from mmrefine.training.allocator import keep_freed_memory

SHAPE = (128, 8, 97, 16)  # batch, heads, tokens, head width


def measure(allocator: str, threads: int, rounds: int, steps: int) -> dict[str, float]:
    """Milliseconds per operation in this fresh process (module docstring)."""
    torch.set_num_threads(threads)
    if allocator == "keep" and not keep_freed_memory():
        raise SystemExit("keep needs glibc (Linux)")
    b, h, n, d = SHAPE
    a, c, out = torch.rand(b, h, n, n), torch.rand(b, h, n, n), torch.empty(b, h, n, n)
    q, k, v = (torch.randn(*SHAPE, requires_grad=True) for _ in range(3))
    g = torch.randn(*SHAPE)
    hidden = torch.randn(SHAPE[0], SHAPE[2], 4 * SHAPE[1] * SHAPE[3], requires_grad=True)  # the feed-forward's 4d
    g_hidden = torch.randn_like(hidden)

    def attention(attend: Callable[..., torch.Tensor]) -> Callable[[], object]:
        return lambda: torch.autograd.grad((attend(q, k, v, None, 0.1) * g).sum(), (q, k, v))

    ops = {
        "product into a new tensor": lambda: a * c,
        "product into an existing one": lambda: torch.mul(a, c, out=out),
        "softmax": lambda: a.softmax(-1),
        "dropped attention fwd+bwd, composed": attention(dropout.composed_attention),
        "dropped attention fwd+bwd, one function": attention(dropout._DroppedAttention.apply),
        "ReLU+dropout fwd+bwd, composed": lambda: torch.autograd.grad(dropout.fast_dropout(torch.relu(hidden), 0.1), hidden, g_hidden),
        "ReLU+dropout fwd+bwd, one function": lambda: torch.autograd.grad(dropout.relu_dropout(hidden, 0.1), hidden, g_hidden),
    }
    for op in ops.values():
        op(), op()
    best = {name: float("inf") for name in ops}
    for _ in range(rounds):  # operations in turn, so that a slow spell of the machine hits all of them
        for name, op in ops.items():
            times = []
            for _ in range(steps):
                t0 = time.perf_counter()
                op()
                times.append(time.perf_counter() - t0)
            best[name] = min(best[name], 1000 * statistics.median(times))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()
    print(f"tensors {SHAPE} (attention matrices {SHAPE[0]} x {SHAPE[1]} x {SHAPE[2]} x {SHAPE[2]}, "
          f"{4 * SHAPE[0] * SHAPE[1] * SHAPE[2] ** 2 / 1e6:.0f} MB), {args.threads} thread(s), "
          f"best of {args.rounds} medians of {args.steps}")
    results = {}
    for allocator in ("default", "keep"):
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            results[allocator] = pool.submit(measure, allocator, args.threads, args.rounds, args.steps).result()
    print(f"{'operation':<42} {'default':>9} {'keep':>9}  (ms; allocator)")
    for name in results["default"]:
        print(f"{name:<42} {results['default'][name]:>9.2f} {results['keep'][name]:>9.2f}")
    for allocator, r in results.items():
        print(f"{allocator}: attention composed / one function {r['dropped attention fwd+bwd, composed'] / r['dropped attention fwd+bwd, one function']:.2f}x; "
              f"ReLU+dropout {r['ReLU+dropout fwd+bwd, composed'] / r['ReLU+dropout fwd+bwd, one function']:.2f}x; "
              f"new / existing tensor {r['product into a new tensor'] / r['product into an existing one']:.2f}x")


if __name__ == "__main__":
    main()
