"""Speed of the TablePredictor on a real table: text features, fit, predict.

Times, in one process: (1) the text features of the training and test files (MiniLM;
first time unless they are cached -- ``--cold`` uses an empty cache to measure the
first-time cost), (2) ``fit`` for ``--epochs`` epochs with no early stopping, features
cached, (3) ``predict`` on the test file, features cached. Prints seconds and the
torch thread count; run it on a quiet machine.

    python benchmarks/table_speed.py                      # clothing_reviews, 20 epochs, gating
    python benchmarks/table_speed.py --cold               # also the first-time MiniLM cost
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
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--fusion", default="gating")
    ap.add_argument("--cold", action="store_true", help="compute the text features in an empty cache first")
    args = ap.parse_args()
    root = default_data_root() if args.data_root is None else args.data_root
    d = f"{root}/clothing_reviews/"
    train, test = pd.read_csv(d + "train.csv"), pd.read_csv(d + "test.csv")
    cache = tempfile.mkdtemp(prefix="mmrefine-cold-") if args.cold else str(default_cache_dir())
    pre = TablePreprocessor.fit(train, "Recommended IND", d + "column_info.json")
    t = time.perf_counter()
    pre.transform(train, cache)
    pre.transform(test, cache)
    features = time.perf_counter() - t
    p = TablePredictor(label="Recommended IND", column_types=d + "column_info.json", fusion=args.fusion, epochs=args.epochs,
                       patience=None, progress_bar=False, cache_dir=cache)
    t = time.perf_counter()
    p.fit(train)
    fit = time.perf_counter() - t
    t = time.perf_counter()
    p.predict(test)
    predict = time.perf_counter() - t
    print(f"torch threads: {torch.get_num_threads()}; {len(train)} training rows, {len(test)} test rows")
    print(f"text features ({'first time, empty cache' if args.cold else 'as cached'}), train + test files: {features:.1f} s")
    print(f"fit, {args.epochs} epochs, no early stopping (features cached): {fit:.1f} s")
    print(f"predict on {len(test)} rows (features cached): {predict:.2f} s")
    print(f"test scores: {p.evaluate(test)}")


if __name__ == "__main__":
    main()
