"""Run AutoGluon's TabularPredictor on one train/test pair, in AutoGluon's own environment.

This script imports nothing of mmrefine: ``benchmarks/tables_suite.py`` runs it with the
Python of a separate environment that has ``autogluon.tabular`` (``make peers`` creates
``.venv-peers``; AutoGluon pins an older pandas than mmrefine's development pins), and
scores the probabilities it writes with the same code as every other variant.

    .venv-peers/bin/python benchmarks/peers/autogluon_runner.py --train tr.csv --test te.csv \\
        --label "Recommended IND" --column-types types.json --eval-metric f1 --time-limit 120 --seed 0 --out out.json

Text columns are declared as text, so AutoGluon builds its own n-gram features from them
(``TextNgramFeatureGenerator``); categorical and numerical columns keep their declared types.
``--eval-metric`` is passed as AutoGluon's ``eval_metric`` (``pr_auc`` as ``average_precision``).
The output JSON holds the test rows' class probabilities (columns in AutoGluon's class order),
the class labels, and the fit and predict times.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time

METRICS = {"pr_auc": "average_precision", "rmse": "root_mean_squared_error", "mae": "mean_absolute_error",
           "log_loss": "log_loss", "f1_weighted": "f1_weighted", "f1_micro": "f1_micro"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--label", required=True)
    ap.add_argument("--column-types", required=True, help="JSON file {column: text|categorical|numerical|ignore}")
    ap.add_argument("--eval-metric", default=None)
    ap.add_argument("--problem-type", default=None, help="binary, multiclass or regression")
    ap.add_argument("--time-limit", type=float, default=120)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--presets", default="medium_quality")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import numpy as np
    import pandas as pd
    from autogluon.common.features.feature_metadata import FeatureMetadata
    from autogluon.tabular import TabularPredictor

    kinds = json.load(open(args.column_types))
    cols = [c for c, k in kinds.items() if k != "ignore"]
    train = pd.read_csv(args.train)[cols + [args.label]]
    test = pd.read_csv(args.test)[cols]
    for c, k in kinds.items():
        if k == "text":
            train[c] = train[c].fillna("").astype(str)
            test[c] = test[c].fillna("").astype(str)
        elif k == "categorical":
            train[c] = train[c].astype("category")
            test[c] = pd.Categorical(test[c], categories=train[c].cat.categories)
    meta = FeatureMetadata.from_df(train.drop(columns=[args.label]))
    meta = meta.add_special_types({c: ["text"] for c, k in kinds.items() if k == "text"})
    path = tempfile.mkdtemp(prefix="ag-")
    metric = METRICS.get(args.eval_metric, args.eval_metric)
    try:
        t0 = time.perf_counter()
        predictor = TabularPredictor(label=args.label, eval_metric=metric, problem_type=args.problem_type, path=path, verbosity=0)
        predictor.fit(train, time_limit=args.time_limit, presets=args.presets, feature_metadata=meta, ag_args_fit={"random_seed": args.seed},
                      calibrate_decision_threshold="auto")
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        if predictor.problem_type == "regression":
            proba, classes = predictor.predict(test).to_numpy()[:, None], []
        else:
            p = predictor.predict_proba(test)
            proba, classes = p.to_numpy(), [x.item() if hasattr(x, "item") else x for x in p.columns]
        pred = predictor.predict(test).tolist()
        predict_s = time.perf_counter() - t0
        board = predictor.leaderboard(silent=True)
        out = {"proba": np.asarray(proba, dtype=float).tolist(), "classes": classes, "predictions": [x.item() if hasattr(x, "item") else x for x in pred],
               "fit_s": fit_s, "predict_s": predict_s, "models": board["model"].tolist(), "best": predictor.model_best,
               "threshold": getattr(predictor, "decision_threshold", None)}
        json.dump(out, open(args.out, "w"))
    finally:
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
