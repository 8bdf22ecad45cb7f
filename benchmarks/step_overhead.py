"""Per-step overhead of a Lightning fit against a plain PyTorch loop over the same model and batches.

Builds one config's model twice (same seed) and trains each for ``--epochs`` over the
same training split: (1) a plain loop -- a DataLoader over the dataset, forward, the
task loss (plus any auxiliary terms), backward, AdamW in the engine's implementation
(``optim.fused``) -- and (2) ``mmrefine``'s engine
(``fit``: Lightning, checkpoints, logging, validation off where the engine allows). Both
runs are timed in this process, alternately ``--repeats`` times after one untimed epoch
of the plain loop (the first steps in a process pay for lazy initialisation), with the
same thread count; the best time of each is kept and the ratio of wall time per
training step is printed. Run it on a quiet machine.

    python benchmarks/step_overhead.py                         # the demo's model (mfeat, GMU)
    python benchmarks/step_overhead.py --config configs/avmnist.yaml --epochs 1
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from plain_step import plain_step  # benchmarks/plain_step.py, beside this script

from mmrefine.config import load_config
from mmrefine.training.builders import build_datamodule, build_model, build_task
from mmrefine.training.engine import fit
from mmrefine.training.module import adamw_implementation


def plain_loop(cfg, epochs: int) -> tuple[float, int]:  # noqa: ANN001
    torch.manual_seed(cfg.seed)
    dm = build_datamodule(cfg)
    dm.setup()
    task = build_task(cfg, dm)
    model = build_model(cfg, dm.schema, task)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay,
                            **adamw_implementation(cfg.optim.fused))  # the engine's AdamW: only the engine differs
    loader = dm.loader(dm.labelled_train(), train=True)
    steps = 0
    t0 = time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            plain_step(model, task, opt, batch)
            steps += 1
    return time.perf_counter() - t0, steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/mfeat.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    plain = engine = float("inf")
    with tempfile.TemporaryDirectory() as d:
        for i in range(args.repeats):
            overrides = [*args.overrides, f"run_dir={d}/run{i}", f"trainer.max_epochs={args.epochs}", "trainer.progress_bar=false"]
            cfg = load_config(args.config, overrides)
            if i == 0:
                plain_loop(cfg, 1)  # warm-up, untimed
            t, steps = plain_loop(cfg, args.epochs)
            plain = min(plain, t)
            t0 = time.perf_counter()
            res = fit(cfg, test=False)
            engine = min(engine, time.perf_counter() - t0)
            logged = int(res.trainer.global_step)
    print(f"config={args.config} {' '.join(args.overrides)} epochs={args.epochs} threads={torch.get_num_threads()} "
          f"(best of {args.repeats})")
    print(f"plain PyTorch loop: {plain:.2f} s for {steps} steps ({1000 * plain / steps:.2f} ms/step)")
    print(f"mmrefine fit:       {engine:.2f} s for {logged} steps ({1000 * engine / logged:.2f} ms/step; includes building, "
          "validation each epoch, checkpoints and the final validation)")
    print(f"ratio (fit / plain, per step): {(engine / logged) / (plain / steps):.2f}")


if __name__ == "__main__":
    main()
