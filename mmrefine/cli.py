"""Command line: ``mmrefine {fit,validate,test,predict,export,demo,sweep,report,data}``.

Configs are YAML files checked against typed dataclasses
(:mod:`mmrefine.config`); an unknown key is an error that names it.
``--set key.sub=value`` overrides any entry.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from mmrefine.core.errors import ConfigError, MMRefineError
from mmrefine.experiments.executors import EXECUTORS


def _common(p: argparse.ArgumentParser, config_required: bool = True) -> None:
    p.add_argument("--config", "-c", required=config_required, help="experiment YAML file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a config entry")
    p.add_argument("--run-dir", help="output folder (overrides run_dir)")
    p.add_argument("--data-root", help="data folder (overrides data.root)")


def _tracking(p: argparse.ArgumentParser) -> None:
    p.add_argument("--logger", dest="loggers", action="append", choices=["csv", "tensorboard", "mlflow"], metavar="NAME",
                   help="also log to this tracker: tensorboard or mlflow (repeatable; CSV logs are always written; "
                        "pip install 'mmrefine[track]')")
    p.add_argument("--tracking-uri", help="MLflow tracking store or server (default: an SQLite store in the run or sweep directory)")


def _load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from mmrefine.config import load_config

    overrides = list(args.overrides)
    if getattr(args, "loggers", None):
        overrides.append(f"trainer.loggers={json.dumps(args.loggers)}")
    if getattr(args, "tracking_uri", None):
        overrides.append(f"trainer.tracking_uri={json.dumps(args.tracking_uri)}")
    if args.run_dir:
        overrides.append(f"run_dir={args.run_dir}")
    if args.data_root:
        overrides.append(f"data.root={args.data_root}")
    return load_config(args.config, overrides)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmrefine", description=__doc__.splitlines()[0])
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                        help="import a module of yours first, so the datasets, encoders or fusions it registers "
                             "can be named in configs (repeatable; 'mmrefine.plugins' entry points load by themselves)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("fit", help="train (optionally pretrain first) and test the best checkpoint; or fit a table")
    _common(p, config_required=False)
    p.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run in the same run directory")
    _tracking(p)
    t = p.add_argument_group("a table instead of a config (TablePredictor)")
    t.add_argument("--table", help="training table (CSV, TSV or Parquet)")
    t.add_argument("--label", help="label column")
    t.add_argument("--column-types", help="JSON: {column: text|categorical|numerical} or the Multimodal-Toolkit column_info form")
    t.add_argument("--test", help="test table: its metrics are printed and written to RUN_DIR/test_metrics.json")
    t.add_argument("--preset", default="best", choices=["best", "fast"],
                   help="best: network + gradient boosting + linear model, bagged and ensembled (default); fast: the network alone")
    t.add_argument("--eval-metric", help="the metric you are judged by (f1, f1_macro, roc_auc, pr_auc, accuracy, rmse, ...)")
    t.add_argument("--time-limit", type=float, help="seconds for the whole fit (members that do not fit are skipped)")
    t.add_argument("--num-folds", type=int, help="bagging folds (default: the preset's; 0: one validation split)")
    t.add_argument("--text-encoder", default="frozen", choices=["frozen", "finetune"],
                   help="frozen MiniLM sentence embeddings (default) or fine-tune MiniLM's top layers in the network")
    t.add_argument("--fusion", default="gating", help="the network's fusion module or combiner (default: gating)")
    t.add_argument("--refiner", nargs="?", const="on", default="auto", choices=["auto", "on", "off"],
                   help="the Refiner: auto (on when rows without a label are given; default), on, off")
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--monitor", help="validation metric for the checkpoint and early stopping, e.g. val/f1_macro")
    t.add_argument("--class-weight", choices=["balanced"], help="weigh the loss by inverse class frequency")
    t.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("distill", help="train a config's model as the student of a finished run (modality-specific distillation)")
    _common(p)
    p.add_argument("--teacher", required=True, help="run directory of the trained teacher")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run in the same run directory")
    _tracking(p)
    for name in ("validate", "test"):
        p = sub.add_parser(name, help=f"metrics of a checkpoint on the {'validation' if name == 'validate' else 'test'} split")
        _common(p)
        p.add_argument("--ckpt", required=True)
    p = sub.add_parser("predict", help="write predictions as CSV: a config's test split (--ckpt), or any table (--table)")
    _common(p, config_required=False)
    p.add_argument("--ckpt", help="checkpoint (with --config)")
    p.add_argument("--out", required=True)
    p.add_argument("--table", help="a table to score with the predictor fitted in --run-dir")
    p.add_argument("--id-column", help="a column of --table copied into the output (default: the table's first column "
                                       "when it is not a feature)")
    p = sub.add_parser("export", help="save the inference model (no Refiner decoders) as safetensors")
    _common(p)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("demo", help="fusion x Refiner on the bundled UCI Multiple Features data")
    p.add_argument("--config", default="configs/demo.yaml")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--seeds", type=int, nargs="+", help="override the seeds")
    p.add_argument("--epochs", type=int, help="override max_epochs (for a quick look)")
    p.add_argument("--fresh", action="store_true", help="discard earlier results in --out and start over")
    p.add_argument("--jobs", type=int, help="runs at once, one thread each (default: one per CPU core)")
    p = sub.add_parser("data", help="data utilities")
    dsub = p.add_subparsers(dest="data_command", required=True)
    d = dsub.add_parser("download", help="download MNIST or FSDD into --data-root, verified by checksum")
    d.add_argument("name", choices=["mnist", "fsdd"])
    d.add_argument("--data-root", required=True)
    d.add_argument("--base-url", help="a mirror (or file:// copy) holding the same files")
    d = dsub.add_parser("check", help="list what is missing under --data-root")
    d.add_argument("name", choices=["mnist", "fsdd"])
    d.add_argument("--data-root", required=True)
    d = dsub.add_parser("build", help="build (or find cached) AV-MNIST from mnist/ + fsdd/; prints its folder and build time")
    d.add_argument("name", choices=["avmnist"])
    d.add_argument("--data-root", help="default: ../shared/data or $MMREFINE_DATA")
    d.add_argument("--cache-dir", help="default: $MMREFINE_CACHE or ~/.cache/mmrefine")
    d.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="recipe setting, e.g. snr_db=3 or pca_components=4 (repeatable)")
    d.add_argument("--force", action="store_true", help="rebuild even when a valid cache exists")
    d = dsub.add_parser("export", help="write the built AV-MNIST in another layout (for running a peer on exactly our data)")
    d.add_argument("name", choices=["avmnist"])
    d.add_argument("out", help="folder to write")
    d.add_argument("--layout", choices=["multibench"], default="multibench",
                   help="multibench: img_/aud_{train,test}.npy, {train,test}_labels.npy, and image/, audio/{train,test}_data.npy "
                        "as MultiBench's loader opens them")
    d.add_argument("--data-root", help="default: ../shared/data or $MMREFINE_DATA")
    d.add_argument("--cache-dir", help="default: $MMREFINE_CACHE or ~/.cache/mmrefine")
    d.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe setting, as for data build")
    p = sub.add_parser("report", help="write report.md (tables + figures) for a run or sweep directory")
    p.add_argument("directory")
    p.add_argument("--baseline", help="sweep: the variant p-values and robustness compare against")
    p.add_argument("--metric", help="sweep: the metric to summarise (default: the first test metric)")
    p.add_argument("--html", action="store_true", help="sweep: also write report.html (one self-contained page with charts)")
    p = sub.add_parser("sweep", help="N seeds x M variants, resumable; prints mean ± std and Welch p-values")
    p.add_argument("--config", "-c", required=True, help="sweep YAML (see mmrefine.experiments.sweep)")
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", type=int, nargs="+")
    p.add_argument("--epochs", type=int)
    p.add_argument("--jobs", type=int, default=1, help="runs at once, in separate processes sharing the CPU threads (default 1)")
    p.add_argument("--executor", choices=list(EXECUTORS), default="local",
                   help="local processes (default), or tasks on a Ray cluster (pip install -e '.[ray]')")
    p.add_argument("--address", help="Ray cluster to join ('auto' or HOST:PORT; default: start a local one)")
    p.add_argument("--cpus-per-run", type=int, default=1, help="CPUs (torch threads) each run asks of Ray (default 1)")
    _tracking(p)
    return parser


def load_plugins(modules: Sequence[str]) -> None:
    """Import the ``mmrefine.plugins`` entry points, then ``modules`` (``--import``)."""
    import importlib
    from importlib.metadata import entry_points


    for ep in entry_points(group="mmrefine.plugins"):
        ep.load()
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"--import {name}: {exc} (is its folder on PYTHONPATH, or the package installed?)") from exc


def _fit_table(args: argparse.Namespace) -> None:
    from mmrefine.data.table import read_table
    from mmrefine.predictors import TablePredictor

    if not args.label or not args.run_dir:
        raise ConfigError("fit --table needs --label COLUMN and --run-dir DIR")
    run = Path(args.run_dir)
    if (run / "predictor").exists() and not args.overwrite:
        raise ConfigError(f"{run} already holds a fitted table predictor; --overwrite replaces it")
    train = read_table(args.table)
    test = read_table(args.test) if args.test else None
    refiner = {"auto": "auto", "on": True, "off": False}[args.refiner]
    p = TablePredictor(label=args.label, column_types=args.column_types, preset=args.preset, eval_metric=args.eval_metric,
                       time_limit=args.time_limit, num_folds=args.num_folds, text_encoder=args.text_encoder, fusion=args.fusion,
                       refiner=refiner, seed=args.seed, epochs=args.epochs, monitor=args.monitor, class_weight=args.class_weight,
                       run_dir=str(run / "fit"))
    p.fit(train)
    p.save(run / "predictor")
    out: dict = {"run_dir": str(run), "predictor": str(run / "predictor"), "val": p.validation}
    board = p.leaderboard(test) if test is not None else p.leaderboard()
    out["leaderboard"] = json.loads(board.to_json(orient="records"))
    if test is not None:
        out["test"] = p.evaluate(test)
        (run / "test_metrics.json").write_text(json.dumps(out["test"], indent=2))
    print(json.dumps(out, indent=2))


def _predict_table(args: argparse.Namespace) -> None:
    from mmrefine.core.errors import DataError
    from mmrefine.data.table import read_table
    from mmrefine.predictors import TablePredictor

    if not args.run_dir:
        raise ConfigError("predict --table needs --run-dir DIR (a folder written by fit --table)")
    p = TablePredictor.load(Path(args.run_dir) / "predictor")
    df = read_table(args.table)
    pre = p.preprocessor
    id_col = args.id_column
    if id_col is None and pre is not None and (df.columns[0] in pre.ignored or str(df.columns[0]).startswith("Unnamed")):
        id_col = df.columns[0]
    if id_col is not None and id_col not in df.columns:
        raise DataError(f"--id-column '{id_col}' is not in {args.table}")
    out = df[[id_col]].copy() if id_col is not None else df.iloc[:, :0].copy()
    out["prediction"] = p.predict(df)
    if pre is not None and pre.task != "regression":
        proba = p.predict_proba(df)
        for c in proba.columns:
            out[f"p_{c}"] = proba[c]
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    out.to_csv(tmp, index=False)
    tmp.replace(path)
    print(path)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from mmrefine.logging_setup import quiet_lightning, show_progress_notes

    quiet_lightning()
    show_progress_notes()
    try:
        load_plugins(args.imports)
        if args.command == "fit" and args.table:
            if args.loggers or args.tracking_uri:
                raise ConfigError("--logger and --tracking-uri apply to a config's fit, not to fit --table")
            _fit_table(args)
            return 0
        if args.command == "predict" and args.table:
            _predict_table(args)
            return 0
        if args.command in ("fit", "predict") and not args.config:
            raise ConfigError(f"{args.command} needs --config FILE (or --table for a table)")
        if args.command == "predict" and not args.ckpt:
            raise ConfigError("predict --config needs --ckpt CHECKPOINT")
        if args.command == "demo":
            from mmrefine.experiments.demo import run_demo

            run_demo(args.config, args.out, args.seeds, args.epochs, args.fresh, args.jobs)
            return 0
        if args.command == "data":
            from mmrefine.data import download as dl

            if args.data_command == "download":
                print(dl.download(args.name, args.data_root, args.base_url))
            elif args.data_command == "export":
                from mmrefine.data.avmnist_build import export_multibench

                print(json.dumps(export_multibench(args.data_root, args.out, args.cache_dir, args.set), indent=1))
            elif args.data_command == "build":
                from mmrefine.data.avmnist_build import build_from_cli

                print(json.dumps(build_from_cli(args.data_root, args.cache_dir, args.set, args.force), indent=1))
            else:
                dl.require(args.name, args.data_root)
                print(f"{args.name}: complete under {args.data_root}")
            return 0
        if args.command == "report":
            from mmrefine.experiments.report import write_report

            path = write_report(args.directory, args.baseline, args.metric, args.html)
            print(path.with_suffix(".html") if args.html else path)
            return 0
        if args.command == "sweep":
            from mmrefine.experiments.sweep import load_sweep, read_records, run_sweep, summarize

            sweep = load_sweep(args.config)
            seeds = set(args.seeds or sweep.seeds)
            total = len(sweep.variants) * len(seeds)
            finished = [sum(r["variant"] in sweep.variants and r["seed"] in seeds for r in read_records(args.out))]

            def note(r: dict) -> None:  # a sign of life per finished run (runs take seconds to minutes)
                finished[0] += 1
                value = r["test"].get(sweep.metric, float("nan"))
                print(f"[{finished[0]}/{total}] {r['variant']} seed {r['seed']}: {sweep.metric} {value:.4f} "
                      f"({r['seconds']:.0f} s)", file=sys.stderr, flush=True)

            records = run_sweep(args.config, args.out, args.seeds, args.epochs, on_record=note, jobs=args.jobs,
                                executor=args.executor, address=args.address, cpus_per_run=args.cpus_per_run,
                                loggers=args.loggers, tracking_uri=args.tracking_uri)
            print(f"{'variant':<24} {sweep.metric:>18} {'n':>3} {'p vs ' + str(sweep.baseline):>14}")
            for c in summarize(records, sweep.metric, sweep.baseline):
                print(f"{c.name:<24} {c.mean:>10.4f} ± {c.std:.4f} {c.n:>3} {c.p_value:>14.4f}")
            print(f"records: {args.out}/runs.jsonl")
            return 0
        if args.command == "distill":  # a fit whose model is the student of --teacher (weighting from the config)
            args.overrides = [*args.overrides, f"model.distill.teacher={json.dumps(str(args.teacher))}"]
            args.command, args.resume = "fit", False
        cfg = _load(args)
        try:
            return _run_config(args, cfg)
        except ConfigError as exc:  # a setting of the file that does not build: name the file too
            if str(args.config) in str(exc):
                raise
            raise ConfigError(f"{args.config}: {exc}") from exc
    except MMRefineError as exc:
        print(f"mmrefine: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a user path that cannot be read or written
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"mmrefine: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2


def _run_config(args: argparse.Namespace, cfg: Any) -> int:
    """The verbs that train or evaluate a config's model."""
    from mmrefine.training import engine

    if args.command == "fit":
        try:
            res = engine.fit(cfg, resume=args.resume, overwrite=args.overwrite)
        finally:
            engine.leave_process_group()  # the process exits next
        print(json.dumps({"run_dir": str(res.run_dir), "best_checkpoint": res.best_checkpoint, "val": res.val, "test": res.test}, indent=2))
    elif args.command in ("validate", "test"):
        split = "val" if args.command == "validate" else "test"
        print(json.dumps(engine.evaluate(cfg, args.ckpt, split), indent=2))
    elif args.command == "predict":
        print(engine.predict(cfg, args.ckpt, args.out))
    elif args.command == "export":
        _, module = engine.load_module(cfg, args.ckpt)
        print(engine.export(module.model, Path(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
