"""Training-step speed of AV-MNIST late fusion with the papers' LeNet encoders, under the
levers that might speed a CPU conv net up.

The model of ``configs/avmnist_multibench_lenet.yaml``: image LeNet (kernels 5, 3, 3, 3), audio
LeNet (kernels 5, 3, 3, 3, 3, 3; six layers, as in Progressive Fusion's appendix and MultiBench's
``LeNet(1, 6, 5)``), width 6 doubling, concatenation and an MLP 240 -> 100 -> 10; with MultiBench's
BatchNorm after each convolution (``bn``) and without it (``nobn``, the blocks as the paper
describes them). One training step (forward, backward, AdamW) on a fixed batch of AV-MNIST-shaped
inputs (image 1x28x28, spectrogram 1x112x112), timed as the best of ``--repeats`` medians of
``--steps`` steps (variants interleaved, after two untimed steps each), for: eager (the default),
channels-last memory format (the encoders' ``channels_last: true``), ``torch.compile`` (inductor;
compile time reported apart), both; batch sizes 40 (MultiBench's) and 128 (ours); with
``--precision 32 bf16`` each also under bf16 autocast (``trainer.precision: bf16-mixed``: the
convolutions and matmuls in bfloat16, weights and optimiser in fp32). Prints milliseconds per
sample and the speed-up over fp32 eager with the same BatchNorm setting and batch size.

Freed memory is kept for reuse as in every fit (:mod:`mmrefine.training.allocator`);
``--allocator default`` leaves glibc's thresholds as they are.

    python benchmarks/conv_speed.py [--steps 10] [--threads 2] [--batches 40 128] [--no-compile] [--allocator default] [--precision 32 bf16]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from plain_step import plain_step  # benchmarks/plain_step.py, beside this script

from mmrefine.config import load_config
from mmrefine.training.allocator import keep_freed_memory
from mmrefine.training.builders import build_model
from mmrefine.training.tasks import TASKS

CONFIG = "configs/avmnist_multibench_lenet.yaml"
SHAPES = {"image": (1, 28, 28), "audio": (1, 112, 112)}


def build(batch_norm: bool, channels_last: bool, compile_model: bool) -> tuple[torch.nn.Module, object]:
    from mmrefine.data.batch import BatchSchema

    enc = {"channels_last": channels_last, "batch_norm": batch_norm}
    cfg = load_config(CONFIG, data={"model": {"encoders": {"audio": enc, "image": enc}}})
    task = TASKS.build({"name": "classification"}, provided={"num_outputs": 10})
    torch.manual_seed(0)
    model = build_model(cfg, BatchSchema.from_shapes(SHAPES), task).train()
    return (torch.compile(model) if compile_model else model), task


def make_step(model: torch.nn.Module, task, batch: int, bf16: bool = False):  # noqa: ANN001, ANN201
    from mmrefine.data.batch import MultimodalBatch

    g = torch.Generator().manual_seed(0)
    x = {m: torch.rand(batch, *s, generator=g) for m, s in SHAPES.items()}
    data = MultimodalBatch(x, {m: torch.ones(batch, dtype=torch.bool) for m in SHAPES}, torch.randint(0, 10, (batch,), generator=g))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            plain_step(model, task, opt, data)

    return step


def median_time(step, steps: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


VARIANTS = (("eager", False, False), ("channels_last", True, False), ("compile", False, True), ("compile+channels_last", True, True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--batches", type=int, nargs="+", default=[40, 128])
    ap.add_argument("--no-compile", action="store_true", help="leave out the torch.compile variants")
    ap.add_argument("--allocator", choices=["default", "keep"], default="keep",
                    help="glibc's default thresholds, or freed memory kept for reuse as every fit does")
    ap.add_argument("--precision", nargs="+", choices=["32", "bf16"], default=["32"],
                    help="fp32, and/or bf16 autocast as trainer.precision: bf16-mixed")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    kept = args.allocator == "keep" and keep_freed_memory()
    print(f"AV-MNIST late fusion, the papers' LeNets (audio: 6 layers), training step, {args.threads} thread(s), "
          f"best of {args.repeats} medians of {args.steps} steps, variants interleaved, "
          f"{'freed memory kept' if kept else 'default allocator'}")
    print(f"{'batch':>5} {'variant':<27} {'ms/sample':>10} {'speed-up':>9} {'first step s':>13}")
    precisions = ["32", *[p for p in args.precision if p != "32"]]  # fp32 eager is every ratio's reference
    variants = [(("bn" if bn else "nobn", name + ("" if p == "32" else " " + p)), bn, cl, comp, p == "bf16")
                for bn in (True, False) for p in precisions for name, cl, comp in VARIANTS if not (comp and args.no_compile)]
    for batch in args.batches:
        steps, first = {}, {}
        for name, bn, cl, comp, bf16 in variants:
            model, task = build(bn, cl, comp)
            steps[name] = make_step(model, task, batch, bf16)
            t0 = time.perf_counter()
            steps[name]()  # a compiled model compiles here
            first[name] = time.perf_counter() - t0
            steps[name]()
        best = {name: float("inf") for name in steps}
        for _ in range(args.repeats):
            for name, step in steps.items():
                best[name] = min(best[name], median_time(step, args.steps))
        for name in steps:
            norm, variant = name
            print(f"{batch:>5} {norm + ' ' + variant:<27} {1000 * best[name] / batch:>10.3f} "
                  f"{best[norm, 'eager'] / best[name]:>9.2f} {first[name]:>13.1f}", flush=True)


if __name__ == "__main__":
    main()
