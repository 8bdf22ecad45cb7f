"""Training- and inference-step cost of the Refiner relative to its base model.

Measures, in one process on the same data, the median wall time of a full
training step (forward, loss, backward, AdamW step) for the base model and for
Refiner(base) with cosine losses (and optionally the Multi-Similarity term),
and the inference forward of the exported model. Each variant's cost is the
fastest of ``repeats`` medians (variants interleaved), which is the least
noisy statistic on a shared machine. Prints ratios only. The exported model of
every variant is the same architecture, so its inference ratio is 1 by
construction: the deviation from 1 shows the measurement noise.

    python benchmarks/refiner_overhead.py [--fusion gmu] [--batch 64] [--steps 200]
    python benchmarks/refiner_overhead.py --config configs/avmnist.yaml --fusion config \
        --set "model.encoders.audio={name: lenet, kernels: [5, 3, 3, 3, 3], width: 6, out_dim: 64}" \
        --batch 128 --steps 10 --repeats 3          # a CNN-sized model (a 5-layer audio LeNet)
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mmrefine.config import load_config
from mmrefine.core.protocols import inference_model
from mmrefine.training.builders import build_datamodule, build_model, build_task
from mmrefine.training.module import MultimodalModule


def step_times(module: MultimodalModule, batch, steps: int, train: bool = True) -> list[float]:
    opt = torch.optim.AdamW(module.parameters(), lr=1e-3)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        if train:
            terms, _ = module.loss_terms(batch)
            loss = torch.stack(list(terms.values())).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        else:
            with torch.no_grad():
                module.model(batch.inputs, batch.mask)
        times.append(time.perf_counter() - t0)
    return times


def step_flops(module: MultimodalModule, batch, train: bool = True) -> int:
    """Exact FLOPs of one forward (+ backward) pass, counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        if train:
            terms, _ = module.loss_terms(batch)
            torch.stack(list(terms.values())).sum().backward()
        else:
            with torch.no_grad():
                module.model(batch.inputs, batch.mask)
    return counter.get_total_flops()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/mfeat.yaml", help="experiment whose data and model are measured")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="config override")
    ap.add_argument("--fusion", default="gmu", choices=["concat", "gmu", "config"], help="'config': keep the config's fusion")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--decoder-hidden", type=int, default=None, help="Refiner decoder width (default: fused width)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)  # denormal weights/activations would make timings depend on training history
    fusion = {"concat": {"name": "concat", "hidden": [128]}, "gmu": {"name": "gmu", "out_dim": 128}}.get(args.fusion)
    decoder = {"hidden": args.decoder_hidden}
    variants = {
        "base": None,
        "refiner (cosine)": {"decoder": decoder},
        "refiner + MS": {"decoder": decoder, "ms": {"weight": 0.1}},
    }
    modules = {}
    for name, refiner in variants.items():
        model = {"refiner": refiner} | ({"fusion": fusion} if fusion else {})
        cfg = load_config(args.config, args.overrides, data={"model": model})
        torch.manual_seed(0)
        dm = build_datamodule(cfg)
        task = build_task(cfg, dm)
        modules[name] = MultimodalModule(build_model(cfg, dm.schema, task), task, cfg.optim, schema=dm.schema)
    batch = dm.splits["train"].__getitems__(list(range(args.batch)))
    results: dict[str, list[float]] = {k: [] for k in modules}
    infer: dict[str, list[float]] = {k: [] for k in modules}
    for _ in range(args.repeats):  # interleave variants so drift affects all alike
        for name, m in modules.items():
            results[name].append(statistics.median(step_times(m, batch, args.steps)))
            exported = MultimodalModule(inference_model(m.model), m.task)
            infer[name].append(statistics.median(step_times(exported, batch, args.steps, train=False)))
    base = min(results["base"])
    base_inf = min(infer["base"])
    print(f"config={args.config} {' '.join(args.overrides)} fusion={args.fusion}")
    print(f"batch={args.batch} steps={args.steps} repeats={args.repeats} threads=1 decoder_hidden={args.decoder_hidden or 'fused width'}")
    flops = {k: step_flops(m, batch) for k, m in modules.items()}
    inf_flops = {k: step_flops(MultimodalModule(inference_model(m.model), m.task), batch, train=False) for k, m in modules.items()}
    print(f"{'variant':<18} {'time: train/base':>16} {'time: infer/base':>16} {'FLOPs: train/base':>17} {'FLOPs: infer/base':>17}")
    for name in modules:
        print(
            f"{name:<18} {min(results[name]) / base:>16.3f} {min(infer[name]) / base_inf:>16.3f}"
            f" {flops[name] / flops['base']:>17.3f} {inf_flops[name] / inf_flops['base']:>17.3f}"
        )


if __name__ == "__main__":
    main()
