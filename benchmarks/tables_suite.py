"""The table suite: every way to fit one text + tabular table, side by side, over seeds and label fractions.

For a table (``--table train.csv --test test.csv --label COL [--column-types F]``), each
label fraction (``--fractions``: the share of the training labels kept, stratified by
class and seeded; the other training rows are given as unlabelled rows to the predictors
that can use them) and each seed, it fits and scores on the test file:

* ``majority``: the most frequent class's probabilities (the training class shares);
* ``logreg``, ``gbm``: scikit-learn's ``LogisticRegression`` (C=1) and
  ``HistGradientBoostingClassifier`` with their default settings, on exactly the features
  the ``linear`` and ``gbm`` members of ``TablePredictor`` use (one-hot categories,
  standardised numbers, MiniLM embeddings; categories as native categorical splits);
* ``autogluon``: AutoGluon's ``TabularPredictor`` in its own environment
  (``benchmarks/peers/autogluon_runner.py``; ``make peers``), its text columns as its own
  n-gram features, the same ``--time-limit`` and evaluation metric; skipped with a note
  when that environment is absent;
* ``best``, ``fast``: ``TablePredictor`` with each preset and ``--eval-metric``
  (``best`` with ``--time-limit``); ``best+finetune``: the default preset with MiniLM's top
  layers fine-tuned inside the network (asked for by name: minutes per fit on 2 cores);
  ``fast+monitor_f1``: the network early-stopped on validation F1 at the 0.5 cut instead of
  its validation loss (what the default did before; asked for by name);
  ``best:linear``: the default preset with its linear member alone (the logistic
  regression bagged over the folds, with the decision chosen on its out-of-fold
  predictions): what the decision rule gives without the network and the boosting;
* ``fast:COMBINER`` and ``fast:COMBINER+refiner``: the network alone with each
  Multimodal-Toolkit combiner, without and with the Refiner (pretrained on the
  unlabelled rows when there are any).

Every variant gets the same rows and the same settings whatever the table; nothing is tuned
per variant or per table. Each finished (fraction, variant, seed) is one line of
``OUT/runs.jsonl`` with every metric of the task, the fit time and the predict time; a
rerun skips what is recorded (resumable). ``--report`` prints the Markdown tables of what
``OUT`` holds, with each variant's mean ± std over seeds.

    python benchmarks/tables_suite.py --name clothing --table ../shared/data/clothing_reviews/train.csv \\
        --test ../shared/data/clothing_reviews/test.csv --label "Recommended IND" \\
        --column-types ../shared/data/clothing_reviews/column_info.json --eval-metric f1 --out runs/tables_suite/clothing
    python benchmarks/tables_suite.py --out runs/tables_suite/clothing --report
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from mmrefine.data.datamodule import stratified_fraction
from mmrefine.data.paths import default_cache_dir
from mmrefine.data.table import TablePreprocessor, _is_missing, read_column_types
from mmrefine.predictors import TablePredictor
from mmrefine.predictors.members import gbm_code_maps, gbm_matrix, linear_matrix
from mmrefine.predictors.metrics import REPORTED, get_metric, labels_of, score

COMBINERS = ("text_only", "concat", "mlp_cat_concat", "mlps_concat", "concat_mlp", "tabular_attention", "gating", "weighted_feature_sum")
DEFAULT_VARIANTS = ("majority", "logreg", "gbm", "autogluon", "best", "best:linear", "fast", *[f"fast:{c}{r}" for c in COMBINERS for r in ("", "+refiner")])
ROOT = Path(__file__).resolve().parents[1]


class Split:
    """One (fraction, seed) of a table: the training frame (unkept labels emptied), the test frame."""

    def __init__(self, args: argparse.Namespace, fraction: float, seed: int) -> None:
        self.args, self.fraction, self.seed = args, fraction, seed
        train = pd.read_csv(args.table)
        self.test = pd.read_csv(args.test)
        labelled = np.flatnonzero(~train[args.label].map(_is_missing).to_numpy(dtype=bool))
        if fraction < 1:
            keys = train[args.label].to_numpy()[labelled].astype(str)
            kept = labelled[stratified_fraction(keys, fraction, seed)]
            train = train.copy()
            drop = np.setdiff1d(np.arange(len(train)), kept)
            train[args.label] = train[args.label].astype(object)
            train.loc[train.index[drop], args.label] = None
        self.train = train
        self.labelled = train[~train[args.label].map(_is_missing)]
        self.pre = TablePreprocessor.fit(train, args.label, args.column_types, args.task)
        self.y = self.pre.labels(self.test)[0].numpy()

    def kinds(self) -> dict[str, str]:
        return {c: k for c, k in self.pre.kinds.items()} | {c: "ignore" for c in self.pre.ignored}


def scores(task: str, y: np.ndarray, proba: np.ndarray, labels: np.ndarray | None) -> dict[str, float]:
    """Every metric of the task: label metrics of ``labels`` (class indices; None: argmax), the others of ``proba``."""
    out = {}
    for name in REPORTED[task]:
        m = get_metric(name, task)
        try:
            if m.needs == "label":
                out[name] = m.fn(y, proba.argmax(1) if labels is None else labels)
            else:
                out[name] = score(m, y, proba[:, 0] if task == "regression" else proba)
        except ValueError:
            continue
    return out


def _matrices(s: Split) -> tuple[np.ndarray, ...]:
    cache = str(default_cache_dir())
    tr, _ = s.pre.dataset(s.labelled, cache)
    te, _ = s.pre.dataset(s.test, cache, labelled=False)
    return tr, te


def run_majority(s: Split) -> dict[str, Any]:
    y = s.pre.labels(s.labelled)[0].numpy()
    t0 = time.perf_counter()
    share = np.bincount(y, minlength=len(s.pre.classes)) / len(y)
    fit = time.perf_counter() - t0
    proba = np.tile(share, (len(s.test), 1))
    return {"proba": proba, "labels": None, "fit_s": fit, "predict_s": 0.0}


def _sklearn(s: Split, make: Callable[[], Any], matrix: Callable[..., np.ndarray]) -> dict[str, Any]:
    tr, te = _matrices(s)
    y = tr.labels.numpy()
    t0 = time.perf_counter()
    xtr = matrix(tr)
    model = make().fit(xtr, y)
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    xte = matrix(te)
    if s.pre.task == "regression":
        proba = model.predict(xte)[:, None]
    else:
        proba = np.zeros((len(xte), len(s.pre.classes)))
        proba[:, model.classes_] = model.predict_proba(xte)
    return {"proba": proba, "labels": None, "fit_s": fit, "predict_s": time.perf_counter() - t0}


def run_logreg(s: Split) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression, Ridge

    make = (lambda: Ridge()) if s.pre.task == "regression" else (lambda: LogisticRegression(max_iter=3000, random_state=s.seed))
    return _sklearn(s, make, lambda ds: linear_matrix(s.pre, ds))


def run_gbm(s: Split) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    tr, _ = _matrices(s)
    maps = gbm_code_maps(s.pre, tr)
    cats = gbm_matrix(s.pre, tr.subset([0]), maps)[1]
    cls = HistGradientBoostingRegressor if s.pre.task == "regression" else HistGradientBoostingClassifier
    return _sklearn(s, lambda: cls(categorical_features=cats, random_state=s.seed), lambda ds: gbm_matrix(s.pre, ds, maps)[0])


def run_predictor(s: Split, **kwargs: Any) -> dict[str, Any]:
    a = s.args
    p = TablePredictor(label=a.label, column_types=a.column_types, task=a.task, eval_metric=a.eval_metric, seed=s.seed, verbosity=0, **kwargs)
    t0 = time.perf_counter()
    p.fit(s.train)
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    if s.pre.task == "regression":
        proba, labels = p.predict(s.test).to_numpy(dtype=float)[:, None], None
    else:
        proba = p.predict_proba(s.test).to_numpy()
        labels = labels_of(proba, p.threshold)
    out = {"proba": proba, "labels": labels, "fit_s": fit, "predict_s": time.perf_counter() - t0}
    out["extra"] = {"weights": p.weights, "threshold": p.threshold}
    return out


def run_autogluon(s: Split) -> dict[str, Any] | None:
    a = s.args
    python = a.peer_python
    if not python or not Path(python).is_file():
        print(f"  autogluon: skipped, no peer environment at {python} (make peers)", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory(prefix="suite-ag-") as d:
        s.labelled.to_csv(f"{d}/train.csv", index=False)
        s.test.to_csv(f"{d}/test.csv", index=False)
        Path(f"{d}/types.json").write_text(json.dumps(s.kinds()))
        cmd = [python, str(ROOT / "benchmarks" / "peers" / "autogluon_runner.py"), "--train", f"{d}/train.csv", "--test", f"{d}/test.csv",
               "--label", a.label, "--column-types", f"{d}/types.json", "--time-limit", str(a.time_limit), "--seed", str(s.seed),
               "--problem-type", s.pre.task, "--out", f"{d}/out.json"]
        if a.eval_metric:
            cmd += ["--eval-metric", a.eval_metric]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out = json.loads(Path(f"{d}/out.json").read_text())
    if s.pre.task == "regression":
        return {"proba": np.asarray(out["proba"]), "labels": None, "fit_s": out["fit_s"], "predict_s": out["predict_s"]}
    order = [out["classes"].index(c) for c in s.pre.classes]  # AutoGluon's class order -> ours
    proba = np.asarray(out["proba"])[:, order]
    index = {c: i for i, c in enumerate(s.pre.classes)}
    labels = np.array([index[v] for v in out["predictions"]])
    return {"proba": proba, "labels": labels, "fit_s": out["fit_s"], "predict_s": out["predict_s"], "extra": {"best": out["best"]}}


def runner(name: str, args: argparse.Namespace) -> Callable[[Split], dict[str, Any] | None]:
    fixed: dict[str, Callable[[Split], Any]] = {
        "majority": run_majority, "logreg": run_logreg, "gbm": run_gbm, "autogluon": run_autogluon,
        "best": lambda s: run_predictor(s, preset="best", time_limit=args.time_limit),
        "best:linear": lambda s: run_predictor(s, preset="best", members=["linear"], time_limit=args.time_limit),
        "best+finetune": lambda s: run_predictor(s, preset="best", time_limit=None, text_encoder="finetune"),
        "fast": lambda s: run_predictor(s, preset="fast"),
        "fast+finetune": lambda s: run_predictor(s, preset="fast", text_encoder="finetune"),
        "fast+monitor_f1": lambda s: run_predictor(s, preset="fast", monitor="val/f1"),
    }
    if name in fixed:
        return fixed[name]
    if name.startswith("fast:"):
        combiner, _, refiner = name[5:].partition("+")
        if combiner not in COMBINERS or refiner not in ("", "refiner"):
            raise SystemExit(f"unknown variant {name}")
        return lambda s: run_predictor(s, preset="fast", fusion=combiner, refiner=bool(refiner))
    raise SystemExit(f"unknown variant {name}; known: {', '.join(fixed)}, fast:COMBINER[+refiner]")


def run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "runs.jsonl"
    done = set()
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done.add((r["fraction"], r["variant"], r["seed"]))
    meta = {k: v for k, v in vars(args).items() if k not in ("report", "peer_python")}
    meta["peer"] = "autogluon" if Path(args.peer_python).is_file() else None
    (out / "suite.json").write_text(json.dumps(meta, indent=2))
    for fraction in args.fractions:
        for seed in args.seeds:
            split = None
            for variant in args.variants:
                if (fraction, variant, seed) in done:
                    continue
                split = split or Split(args, fraction, seed)
                t0 = time.perf_counter()
                res = runner(variant, args)(split)
                if res is None:
                    continue
                rec = {"table": args.name, "fraction": fraction, "variant": variant, "seed": seed,
                       "labelled_rows": len(split.labelled), "test": scores(split.pre.task, split.y, res["proba"], res["labels"]),
                       "fit_s": res["fit_s"], "predict_s": res["predict_s"], "extra": res.get("extra", {})}
                with path.open("a") as f:
                    f.write(json.dumps(rec, default=float) + "\n")
                print(f"{args.name} {fraction:g} {variant} seed {seed}: {args.eval_metric or ''} "
                      f"{rec['test'].get(args.eval_metric or 'accuracy', float('nan')):.4f} fit {res['fit_s']:.1f} s "
                      f"({time.perf_counter() - t0:.1f} s)", flush=True)


def report(out: Path, metrics: list[str] | None = None) -> str:
    """Markdown tables of ``out/runs.jsonl``: one per label fraction, a row per variant."""
    recs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines() if line.strip()]
    meta = json.loads((out / "suite.json").read_text())
    order = {v: i for i, v in enumerate(meta.get("variants", []))}
    first = recs[0]["test"]
    metrics = metrics or [m for m in ("f1", "f1_macro", "f1_weighted", "accuracy", "pr_auc", "roc_auc", "rmse", "mae", "r2") if m in first]
    key = meta.get("eval_metric") or ("rmse" if "rmse" in first else "log_loss")
    if key in metrics:
        metrics.remove(key)
    metrics = [key, *metrics]
    lines = []
    for fraction in sorted({r["fraction"] for r in recs}, reverse=True):
        rows = [r for r in recs if r["fraction"] == fraction]
        n_lab = sorted({r["labelled_rows"] for r in rows})
        lines += [f"#### {meta.get('name', out.name)}: {fraction:.0%} of the labels ({'-'.join(map(str, n_lab))} labelled rows)", "",
                  "| variant | seeds | " + " | ".join(metrics) + " | fit s | predict s |", "|---" * (len(metrics) + 4) + "|"]
        for v in sorted({r["variant"] for r in rows}, key=lambda v: order.get(v, 99)):
            vr = [r for r in rows if r["variant"] == v]
            cells = []
            for m in metrics:
                vals = np.array([r["test"].get(m, np.nan) for r in vr])
                cells.append(f"{np.nanmean(vals):.3f} ± {np.nanstd(vals):.3f}" if len(vals) > 1 else f"{vals[0]:.3f}")
            fit = np.mean([r["fit_s"] for r in vr])
            pred = np.mean([r["predict_s"] for r in vr])
            lines.append(f"| {v} | {len(vr)} | " + " | ".join(cells) + f" | {fit:.1f} | {pred:.2f} |")
        lines.append("")
    lines += targets(recs, key)
    return "\n".join(lines)


def targets(recs: list[dict], key: str) -> list[str]:
    """The suite's targets per label fraction: the default preset (``best``) against the best
    scikit-learn baseline (``majority``, ``logreg``, ``gbm``) less one pooled standard deviation
    ``sqrt((s_best^2 + s_base^2) / 2)``, and against AutoGluon."""
    lower = key in ("log_loss", "rmse", "mae")
    sign = -1.0 if lower else 1.0
    out = ["#### Targets: `best` against the best baseline and AutoGluon (" + key + ")", "",
           "| fraction | best | best baseline | >= baseline - 1 sd | AutoGluon | >= AutoGluon |", "|---|---|---|---|---|---|"]
    for fraction in sorted({r["fraction"] for r in recs}, reverse=True):
        def stats(v: str) -> tuple[float, float] | None:
            vals = [r["test"][key] for r in recs if r["fraction"] == fraction and r["variant"] == v and key in r["test"]]
            return (float(np.mean(vals)), float(np.std(vals))) if vals else None

        best = stats("best")
        bases = {v: stats(v) for v in ("majority", "logreg", "gbm")}
        bases = {v: b for v, b in bases.items() if b is not None}
        if best is None or not bases:
            continue
        name, base = max(bases.items(), key=lambda kv: sign * kv[1][0])
        sd = float(np.sqrt((best[1] ** 2 + base[1] ** 2) / 2))
        ok_base = sign * best[0] >= sign * base[0] - sd
        ag = stats("autogluon")
        ag_cell = f"{ag[0]:.3f} ± {ag[1]:.3f}" if ag else "not run"
        ok_ag = "yes" if ag and sign * best[0] >= sign * ag[0] else ("no" if ag else "-")
        out.append(f"| {fraction:.0%} | {best[0]:.3f} ± {best[1]:.3f} | {name} {base[0]:.3f} ± {base[1]:.3f} | "
                   f"{'yes' if ok_base else 'no'} | {ag_cell} | {ok_ag} |")
    return out + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--name", default="table")
    ap.add_argument("--table")
    ap.add_argument("--test")
    ap.add_argument("--label")
    ap.add_argument("--column-types", help="JSON file or inline JSON: {column: kind} or the Multimodal-Toolkit form")
    ap.add_argument("--task", default=None, help="binary, multiclass or regression (default: inferred)")
    ap.add_argument("--eval-metric", default=None)
    ap.add_argument("--fractions", type=float, nargs="+", default=[1.0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS))
    ap.add_argument("--time-limit", type=float, default=120.0, help="seconds for best and AutoGluon (default 120)")
    ap.add_argument("--peer-python", default=str(ROOT / ".venv-peers" / "bin" / "python"),
                    help="Python of the AutoGluon environment (default .venv-peers/bin/python; make peers)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--report", action="store_true", help="print the Markdown tables of what --out holds")
    args = ap.parse_args()
    if args.report:
        print(report(Path(args.out)))
        return
    if not (args.table and args.test and args.label):
        raise SystemExit("--table, --test and --label are needed (or --report)")
    if args.column_types and args.column_types.lstrip().startswith("{"):
        args.column_types = json.loads(args.column_types)
    read_column_types(args.column_types)  # fails early on a bad spec
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    run(args)
    print(report(Path(args.out)))


if __name__ == "__main__":
    main()
