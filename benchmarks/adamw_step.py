"""AdamW's step alone, per implementation: torch's default on the CPU (one tensor at a
time), ``foreach`` (the engine's default: the same arithmetic, bit for bit) and ``fused``
(``optim.fused: true``), over two parameter sets:

* ``mlp``: the demo's model family (configs/mfeat.yaml: six MLP encoders, concat fusion);
* ``minilm``: the shapes of all-MiniLM-L6-v2 (BERT, 6 layers, width 384, 22.7M
  parameters), what MMBT and TablePredictor fine-tune (all of it trainable here).

Each step is timed alone (gradients fixed, no forward or backward); median of ``--steps``
after 3 warm-up steps, with ``--threads`` torch threads. Run it on a quiet machine.

    python benchmarks/adamw_step.py --threads 2
"""

from __future__ import annotations

import argparse

import torch
from dropout_masks import median_ms  # benchmarks/dropout_masks.py, beside this script

from mmrefine.config import load_config
from mmrefine.training.engine import prepare

IMPLEMENTATIONS = {"loop (torch's CPU default)": {"foreach": False}, "foreach (default)": {"foreach": True},
                   "fused (optim.fused)": {"fused": True}}


def minilm_shapes() -> list[tuple[int, ...]]:
    """Parameter shapes of BERT with 6 layers, hidden 384, FFN 1536, vocabulary 30522."""
    d, f = 384, 1536
    shapes: list[tuple[int, ...]] = [(30522, d), (512, d), (2, d), (d,), (d,)]
    for _ in range(6):
        shapes += [(d, d), (d,)] * 4 + [(d,), (d,), (f, d), (f,), (d, f), (d,), (d,), (d,)]
    return shapes + [(d, d), (d,)]


def mlp_parameters() -> list[torch.Tensor]:
    _, _, model = prepare(load_config("configs/mfeat.yaml"))
    return [p.detach().clone() for p in model.parameters()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sets = {"mlp": mlp_parameters(), "minilm": [torch.randn(s) for s in minilm_shapes()]}
    print(f"AdamW step alone, {args.threads} thread(s), median of {args.steps}")
    print(f"{'parameters':<28}{'implementation':<30}{'ms/step':>9}{'speed-up':>10}")
    for name, values in sets.items():
        params = [torch.nn.Parameter(v.clone()) for v in values]
        for p in params:
            p.grad = torch.randn_like(p)
        label = f"{name} ({sum(p.numel() for p in params) / 1e6:.2f}M in {len(params)})"
        base = None
        for impl, kw in IMPLEMENTATIONS.items():
            opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01, **kw)
            ms = median_ms(opt.step, args.steps)
            base = base or ms
            print(f"{label:<28}{impl:<30}{ms:>9.2f}{base / ms:>9.2f}x")


if __name__ == "__main__":
    main()
