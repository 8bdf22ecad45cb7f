"""scikit-learn baselines on a table, on exactly the rows and features mmrefine's models see.

* ``logreg``: logistic regression on one-hot categoricals + standardised numericals (with
  missing indicators) + the MiniLM embeddings of every text column (zeros where empty);
* ``hgb``: histogram gradient boosting on the tabular columns only (categories as
  categorical features, numericals raw).

The training rows are the training split of the ``table`` dataset in ``--config`` (the
validation rows carved out as for the neural models are left unused), the test rows its
test file. ``--drop`` removes columns (e.g. ``Rating``). One JSON line per (model, seed),
with the same ``test/...`` keys as a sweep record, so ``benchmarks/tables_report.py
--baselines`` can tabulate them.

    python benchmarks/tables_baselines.py --config configs/clothing_table.yaml --out runs/tables/baselines.jsonl
    python benchmarks/tables_baselines.py --config configs/clothing_table.yaml --drop Rating --out runs/tables/baselines_no_rating.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score
from sklearn.preprocessing import OneHotEncoder

from mmrefine.config import load_config
from mmrefine.training.builders import build_datamodule


def scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    pred = (p > 0.5).astype(int)
    return {"test/f1": f1_score(y, pred), "test/pr_auc": average_precision_score(y, p), "test/roc_auc": roc_auc_score(y, p),
            "test/acc": accuracy_score(y, pred), "test/f1_macro": f1_score(y, pred, average="macro")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--drop", nargs="*", default=[], help="columns to leave out")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    cfg = load_config(args.config)
    if args.drop:  # the column types without the dropped columns (the Multimodal-Toolkit form lists every column used)
        spec = cfg.data["column_types"]
        if isinstance(spec, str):
            spec = json.loads(Path(build_datamodule(cfg).resolve(spec)).read_text())
        if not {"text_cols", "cat_cols", "num_cols"} & set(spec):
            raise SystemExit("--drop needs column types in the Multimodal-Toolkit form (text_cols, cat_cols, num_cols)")
        cfg.data["column_types"] = {k: ([c for c in v if c not in args.drop] if k.endswith("_cols") else v) for k, v in spec.items()}
    dm = build_datamodule(cfg)
    dm.setup()
    pre = dm.pre
    train, test = dm.labelled_train(), dm.splits["test"]
    if pre.task != "binary":
        raise SystemExit("these baselines are written for a binary label")

    def parts(ds: torch.utils.data.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        text = [ds.inputs[m].numpy() * ds.mask[m].numpy()[:, None] for m in pre.text_columns]
        cat = ds.inputs["categorical"].numpy() if "categorical" in ds.inputs else np.zeros((len(ds), 0))
        num = ds.inputs["numerical"].numpy() if "numerical" in ds.inputs else np.zeros((len(ds), 0))
        return np.hstack(text) if text else np.zeros((len(ds), 0)), cat, num

    (xt, ct, nt), (xs, cs, ns) = parts(train), parts(test)
    yt, ys = train.labels.numpy(), test.labels.numpy()
    onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(ct)
    lr_train, lr_test = np.hstack([onehot.transform(ct), nt, xt]), np.hstack([onehot.transform(cs), ns, xs])
    hgb_train, hgb_test = np.hstack([ct, nt]), np.hstack([cs, ns])
    cats = np.arange(ct.shape[1])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as f:
        for seed in args.seeds:
            lr = LogisticRegression(max_iter=3000, C=1.0, random_state=seed).fit(lr_train, yt)
            hgb = HistGradientBoostingClassifier(categorical_features=cats if len(cats) else None, random_state=seed).fit(hgb_train, yt)
            for name, model, x in (("logreg (one-hot + numerical + MiniLM)", lr, lr_test), ("hist. gradient boosting (tabular)", hgb, hgb_test)):
                rec = {"variant": name, "seed": seed, "test": {k: float(v) for k, v in scores(ys, model.predict_proba(x)[:, 1]).items()}}
                f.write(json.dumps(rec) + "\n")
                print(json.dumps(rec))


if __name__ == "__main__":
    main()
