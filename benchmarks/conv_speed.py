"""Training-step speed of the AV-MNIST late-fusion model with the papers' 5-layer audio LeNet,
under the levers that might speed a CPU conv net up.

The model of ``configs/avmnist.yaml`` with ``model.encoders.audio`` set to the papers' LeNet
(kernels 5, 3, 3, 3, 3; width 6), as MultiBench's late-fusion script builds it. One
training step (forward, backward, AdamW) on a fixed batch of AV-MNIST-shaped inputs
(image 1x28x28, spectrogram 1x112x112), timed as the best of ``--repeats`` medians of
``--steps`` steps (variants interleaved, after two untimed steps each), for:
eager (the default), channels-last memory format (the encoders' ``channels_last: true``), ``torch.compile`` (inductor; compile time
reported apart), both, and batch sizes 40 (MultiBench's) and 128 (ours). Prints
milliseconds per sample and the speed-up over eager at the same batch size.

    python benchmarks/conv_speed.py [--steps 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from plain_step import plain_step  # benchmarks/plain_step.py, beside this script

from mmrefine.config import load_config
from mmrefine.training.builders import build_model
from mmrefine.training.tasks import TASKS

LENET_AUDIO = {"name": "lenet", "kernels": [5, 3, 3, 3, 3], "width": 6, "out_dim": 64}
SHAPES = {"image": (1, 28, 28), "audio": (1, 112, 112)}


def build(channels_last: bool, compile_model: bool) -> tuple[torch.nn.Module, object]:
    from mmrefine.data.batch import BatchSchema

    cfg = load_config("configs/avmnist.yaml", data={"model": {"encoders": {
        "audio": {**LENET_AUDIO, "channels_last": channels_last}, "image": {"channels_last": channels_last}}}})
    task = TASKS.build({"name": "classification"}, provided={"num_outputs": 10})
    torch.manual_seed(0)
    model = build_model(cfg, BatchSchema.from_shapes(SHAPES), task).train()
    return (torch.compile(model) if compile_model else model), task


def make_step(model: torch.nn.Module, task, batch: int):  # noqa: ANN001, ANN201
    from mmrefine.data.batch import MultimodalBatch

    g = torch.Generator().manual_seed(0)
    x = {m: torch.rand(batch, *s, generator=g) for m, s in SHAPES.items()}
    data = MultimodalBatch(x, {m: torch.ones(batch, dtype=torch.bool) for m in SHAPES}, torch.randint(0, 10, (batch,), generator=g))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    return lambda: plain_step(model, task, opt, data)


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
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"AV-MNIST late fusion, 5-layer audio LeNet, training step, {args.threads} thread(s), "
          f"best of {args.repeats} medians of {args.steps} steps, variants interleaved")
    print(f"{'batch':>5} {'variant':<22} {'ms/sample':>10} {'speed-up':>9} {'first step s':>13}")
    for batch in args.batches:
        steps, first = {}, {}
        for name, cl, comp in VARIANTS:
            model, task = build(cl, comp)
            steps[name] = make_step(model, task, batch)
            t0 = time.perf_counter()
            steps[name]()  # a compiled model compiles here
            first[name] = time.perf_counter() - t0
            steps[name]()
        best = {name: float("inf") for name in steps}
        for _ in range(args.repeats):
            for name, step in steps.items():
                best[name] = min(best[name], median_time(step, args.steps))
        for name in steps:
            print(f"{batch:>5} {name:<22} {1000 * best[name] / batch:>10.3f} {best['eager'] / best[name]:>9.2f} "
                  f"{first[name]:>13.1f}", flush=True)


if __name__ == "__main__":
    main()
