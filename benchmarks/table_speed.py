"""Speed of the TablePredictor on a real table: text features, fit, predict.

Times, in one process, on the clothing reviews: (1) the MiniLM sentence embeddings of the
training and test files (first time unless cached; ``--cold`` uses an empty cache), (2)
``fit`` with ``--preset`` (default ``best``) once the embeddings are cached, (3) ``predict``
on the 2,349 test rows. ``--finetune-layers K`` instead times the fine-tuned text encoder:
MiniLM's frozen lower layers over the training texts (once per dataset), then a network
with the top K layers fine-tuned, ``--epochs`` epochs without early stopping (seconds per
epoch). Prints seconds and the torch thread count; run it on a quiet machine.

    python benchmarks/table_speed.py                        # best preset, features cached
    python benchmarks/table_speed.py --cold                 # also the first-time MiniLM cost
    python benchmarks/table_speed.py --finetune-layers 2 --epochs 2
"""

from __future__ import annotations

import argparse
import tempfile
import time

import pandas as pd
import torch

from mmrefine import TablePredictor
from mmrefine.data.paths import default_cache_dir, default_data_root
from mmrefine.data.table import TablePreprocessor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--preset", default="best")
    ap.add_argument("--eval-metric", default="f1")
    ap.add_argument("--cold", action="store_true", help="compute the text features in an empty cache first")
    ap.add_argument("--finetune-layers", type=int, default=0, help="time the fine-tuned text encoder with this many top layers")
    ap.add_argument("--epochs", type=int, default=2, help="epochs of the fine-tuning timing")
    args = ap.parse_args()
    root = default_data_root() if args.data_root is None else args.data_root
    d = f"{root}/clothing_reviews/"
    train, test = pd.read_csv(d + "train.csv"), pd.read_csv(d + "test.csv")
    cache = tempfile.mkdtemp(prefix="mmrefine-cold-") if args.cold else str(default_cache_dir())
    label, types = "Recommended IND", d + "column_info.json"
    print(f"torch threads: {torch.get_num_threads()}; {len(train)} training rows, {len(test)} test rows")
    pre = TablePreprocessor.fit(train, label, types)
    t = time.perf_counter()
    pre.transform(train, cache)
    pre.transform(test, cache)
    print(f"text features ({'first time, empty cache' if args.cold else 'as cached'}), train + test files: {time.perf_counter() - t:.1f} s")
    if args.finetune_layers:
        t = time.perf_counter()
        pre.transform(train, cache, tokens_from_layer=6 - args.finetune_layers)
        states = time.perf_counter() - t
        print(f"MiniLM token states after layer {6 - args.finetune_layers} (frozen part, once per dataset), training file: {states:.1f} s")
        p = TablePredictor(label=label, column_types=types, preset="fast", text_encoder="finetune", finetune_layers=args.finetune_layers,
                           epochs=args.epochs, patience=None, cache_dir=cache, verbosity=0)
        t = time.perf_counter()
        p.fit(train)
        fit = time.perf_counter() - t - states
        print(f"fit, top {args.finetune_layers} layer(s) fine-tuned, {args.epochs} epochs (85% of the rows, batch 64): "
              f"{fit:.1f} s, {fit / args.epochs:.1f} s per epoch")
        return
    p = TablePredictor(label=label, column_types=types, preset=args.preset, eval_metric=args.eval_metric, cache_dir=cache, verbosity=0)
    t = time.perf_counter()
    p.fit(train)
    print(f"fit, preset {args.preset} (features cached): {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    p.predict(test)
    print(f"predict on {len(test)} rows (features cached): {time.perf_counter() - t:.2f} s")
    print(f"test scores: { {k: round(v, 4) for k, v in p.evaluate(test).items()} }")


if __name__ == "__main__":
    main()
