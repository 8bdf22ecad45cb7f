"""Multi-seed comparisons: N seeds x M configs, resumable.

A sweep file (YAML, checked like every config)::

    experiment: mfeat.yaml        # base experiment, relative to the sweep file
    seeds: [0, 1, 2]
    baseline: concat              # Welch t-tests are against this variant
    metric: test/acc
    missing: true                 # also test with each single modality absent
    subsets: true                 # also test with every non-empty subset present
    noise: {kind: gaussian, levels: [0, 0.5, 1.0]}   # optional noise sweep per modality
    retrieval: {ks: [1, 2, 5, 10], query: auto, hit: share}
                                  # optional unimodal-query retrieval: bank = training fused
                                  # embeddings, queries = test unimodal features computed with
                                  # the other modalities absent (a bare list sets ks)
    shuffled: true                # optional: each modality in turn taken from another test sample
                                  # (irrelevant to the label); loss terms and metrics on the test split
    probes: true                  # optional linear probes of each modality's features at
                                  # every unrolled step (training -> test; Progressive Fusion)
    variants:
      concat: {model: {fusion: {name: concat}}}
      gmu:    {model: {fusion: {name: gmu}}}
      student: {model: {distill: {teacher: {variant: gmu}, weighting: importance}}}
                                  # distillation from another variant's run with the same seed:
                                  # that run is done first (also with --jobs)

Every finished run is appended as one JSON line to ``OUT/runs.jsonl`` (flushed
and fsynced). Running the sweep again skips the (variant, seed) pairs already
recorded, so after an interruption no finished run is redone, none is lost and
none is recorded twice; an unfinished run continues from its last checkpoint.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from mmrefine.config import deep_merge, from_dict, load_config, read_yaml
from mmrefine.core.errors import ConfigError
from mmrefine.evaluation.statistics import Comparison, compare

if TYPE_CHECKING:  # the process that only schedules runs and summarises records never imports Lightning
    import lightning as L

    from mmrefine.data.datamodule import MultimodalDataModule


@dataclass
class NoiseConfig:
    kind: str = "gaussian"
    levels: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])
    seed: int = 0


@dataclass
class RetrievalConfig:
    """Unimodal-query retrieval (see :mod:`mmrefine.evaluation.retrieval`)."""

    ks: list[int] = field(default_factory=lambda: [1, 2, 5, 10])
    query: str = "auto"  # auto | pad | slot | linear
    hit: str = "share"  # multi-label hits: share | exact


@dataclass
class SweepConfig:
    experiment: str = "experiment.yaml"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    variants: dict[str, dict] = field(default_factory=dict)
    baseline: str | None = None
    metric: str = "test/acc"
    missing: bool = True
    subsets: bool = False  # also test with every non-empty proper subset of modalities present
    noise: NoiseConfig | None = None
    retrieval: RetrievalConfig | list[int] | None = None  # a bare list of k: RetrievalConfig(ks=...)
    probes: bool = False  # linear probes of every modality's features at every unrolled step
    shuffled: bool = False  # loss terms and metrics with each modality shuffled across test samples


def load_sweep(path: str | Path) -> SweepConfig:
    cfg = from_dict(SweepConfig, read_yaml(path))
    if isinstance(cfg.retrieval, list):
        cfg.retrieval = RetrievalConfig(ks=cfg.retrieval)
    if not cfg.variants:
        raise ConfigError(f"{path}: a sweep needs at least one variant")
    if cfg.baseline is not None and cfg.baseline not in cfg.variants:
        raise ConfigError(f"{path}: baseline '{cfg.baseline}' is not a variant ({', '.join(cfg.variants)})")
    for name in cfg.variants:
        seen = [name]
        while (dep := teacher_variant(cfg, seen[-1])) is not None:
            if dep not in cfg.variants:
                raise ConfigError(f"{path}: variant '{seen[-1]}': model.distill.teacher.variant '{dep}' is not a variant "
                                  f"({', '.join(cfg.variants)})")
            if dep in seen:
                raise ConfigError(f"{path}: variants {' -> '.join([*seen, dep])} are each other's teachers")
            seen.append(dep)
    return cfg


def teacher_variant(sweep: SweepConfig, name: str) -> str | None:
    """The variant whose run (same seed) variant ``name`` distils from, if any
    (``model.distill.teacher: {variant: NAME}``)."""
    distill = (sweep.variants[name].get("model") or {}).get("distill") or {}
    teacher = distill.get("teacher") if isinstance(distill, dict) else None
    if isinstance(teacher, dict):
        if set(teacher) != {"variant"}:
            raise ConfigError(f"variant '{name}': model.distill.teacher must be a run directory or {{variant: NAME}}, "
                              f"got {teacher}")
        return str(teacher["variant"])
    return None


def run_dir_of(out: Path, name: str, seed: int) -> Path:
    return out / "runs" / name.replace("+", "_") / f"seed{seed}"


def read_records(out: str | Path) -> list[dict[str, Any]]:
    path = Path(out) / "runs.jsonl"
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash: that run is not finished and will be redone
    return records


def _append(out: Path, record: dict[str, Any]) -> None:
    with open(out / "runs.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def run_sweep(
    path: str | Path,
    out: str | Path,
    seeds: list[int] | None = None,
    epochs: int | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    jobs: int = 1,
    executor: str = "local",
    address: str | None = None,
    cpus_per_run: int = 1,
    loggers: Sequence[str] | None = None,
    tracking_uri: str | None = None,
) -> list[dict[str, Any]]:
    """Run every missing (variant, seed) of the sweep at ``path``; return all records.

    ``loggers`` (``tensorboard``, ``mlflow``) replaces the experiments' ``trainer.loggers``
    (:mod:`mmrefine.training.loggers`): the sweep is one MLflow experiment (named after the
    sweep file) in ``tracking_uri``, by default the SQLite store ``OUT/mlflow.db``, each
    (variant, seed) one MLflow run ``VARIANT/seedN``; TensorBoard reads ``OUT/runs``.

    ``jobs > 1`` runs that many runs at once in separate processes, the CPU
    threads divided between them (``cpu_count // jobs`` each); ``executor="ray"``
    runs them as tasks on a Ray cluster (:mod:`mmrefine.experiments.executors`).
    Either way this process alone appends to ``runs.jsonl``, in order of
    completion, so resuming works exactly as with one job; a student variant
    starts only after its teacher's run of the same seed has finished."""
    path = Path(path)
    sweep = load_sweep(path)
    seeds = seeds if seeds is not None else sweep.seeds
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done = {(r["variant"], r["seed"]) for r in read_records(out)}
    todo = [(name, seed) for name in sweep.variants for seed in seeds if (name, seed) not in done]
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")

    def keep(record: dict[str, Any]) -> None:
        _append(out, record)
        if on_record is not None:
            on_record(record)

    # a student runs after its teacher (same seed): order by depth in the teacher chain
    def depth(name: str) -> int:
        dep = teacher_variant(sweep, name)
        return 0 if dep is None else 1 + depth(dep)

    order = {name: i for i, name in enumerate(sweep.variants)}
    todo.sort(key=lambda t: (depth(t[0]), order[t[0]]))
    tracking = tracking_settings(path, sweep, out, loggers, tracking_uri)
    if todo and "mlflow" in (tracking.get("loggers") or _experiment_trainer(path, sweep).get("loggers") or []):
        from mmrefine.training.loggers import check_loggers, prepare_store

        check_loggers(["mlflow"])
        if tracking["tracking_uri"].startswith("sqlite:///"):
            prepare_store(tracking["tracking_uri"], tracking["experiment_name"], out.resolve() / "mlartifacts")
    if executor == "local" and (jobs == 1 or len(todo) <= 1):
        for name, seed in todo:
            keep(run_one(path, sweep, out, name, seed, epochs, tracking))
        return read_records(out)
    if not todo:
        return read_records(out)
    from mmrefine.experiments.executors import make_executor

    pool = make_executor(executor, jobs, address, cpus_per_run)
    queued = list(todo)
    pending: dict[Any, tuple[str, int]] = {}

    def ready(item: tuple[str, int]) -> bool:  # its teacher's run is neither queued nor running
        dep = teacher_variant(sweep, item[0])
        return dep is None or ((dep, item[1]) not in pending.values() and (dep, item[1]) not in queued)

    def submit() -> None:
        for item in [i for i in queued if ready(i)]:
            queued.remove(item)
            pending[pool.submit(run_one, path, sweep, out, item[0], item[1], epochs, tracking)] = item

    try:
        submit()
        while pending:
            for handle in pool.wait(pending):
                record = pool.result(handle)
                del pending[handle]
                keep(record)
            submit()
    finally:
        pool.close(list(pending))
    return read_records(out)


def tracking_settings(path: Path, sweep: SweepConfig, out: Path, loggers: Sequence[str] | None,
                      tracking_uri: str | None) -> dict[str, Any]:
    """The ``trainer`` settings every run of the sweep gets for its trackers: the command
    line's, else the experiment file's, else one store and experiment for the whole sweep."""
    from mmrefine.training.loggers import default_tracking_uri

    given = _experiment_trainer(path, sweep)
    settings: dict[str, Any] = {"tracking_uri": tracking_uri or given.get("tracking_uri") or default_tracking_uri(out),
                                "experiment_name": given.get("experiment_name") or Path(path).stem}
    if loggers:
        settings["loggers"] = list(loggers)
    return settings


def _experiment_trainer(path: Path, sweep: SweepConfig) -> dict[str, Any]:
    """The ``trainer`` section of the sweep's experiment file."""
    trainer = read_yaml(Path(path).parent / sweep.experiment).get("trainer") or {}
    return dict(trainer) if isinstance(trainer, dict) else {}


def run_one(path: Path, sweep: SweepConfig, out: Path, name: str, seed: int, epochs: int | None,
            tracking: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit one (variant, seed) of the sweep loaded from ``path`` (resuming its run
    directory) and evaluate it; return its record. ``tracking``: the sweep's tracker
    settings (:func:`tracking_settings`); a variant's own ``trainer`` settings win."""
    from lightning.pytorch.loggers import CSVLogger

    from mmrefine.evaluation.robustness import nonempty_subsets
    from mmrefine.training.engine import fit

    t0 = time.perf_counter()
    run_dir = run_dir_of(out, name, seed)
    trainer = {**(tracking or {}), "run_name": f"{name}/seed{seed}"}
    data = deep_merge({"trainer": trainer}, deep_merge(sweep.variants[name], {"seed": seed, "run_dir": str(run_dir)}))
    if (dep := teacher_variant(sweep, name)) is not None:
        data = deep_merge(data, {"model": {"distill": {"teacher": str(run_dir_of(out, dep, seed))}}})
    if epochs is not None:
        data = deep_merge(data, {"trainer": {"max_epochs": epochs}})
    cfg = load_config(path.parent / sweep.experiment, data=data)
    cfg.trainer.progress_bar = False
    res = fit(cfg, resume=True)  # an unstarted run starts fresh, a finished one is only loaded
    res.trainer.loggers = [lg for lg in res.trainer.loggers if isinstance(lg, CSVLogger)]  # the trackers keep the fit's final metrics
    task = res.module.task
    record: dict[str, Any] = {"variant": name, "seed": seed, "run_dir": str(run_dir), "test": res.test, "val": res.val,
                              "directions": {k: task.metric_mode(k) for k in (*res.test, *res.val)}}
    mods = res.datamodule.modalities
    if sweep.missing:
        miss = missing_modality_metrics(res.trainer, res.module, res.datamodule, [[m] for m in mods])
        record["missing"] = {k[1:]: v for k, v in miss.items()}
    if sweep.subsets:
        kept = [s for s in nonempty_subsets(mods) if len(s) < len(mods)]
        drops = [[m for m in mods if m not in s] for s in kept]
        res_sub = missing_modality_metrics(res.trainer, res.module, res.datamodule, drops)
        record["subsets"] = {"+".join(s): res_sub["-" + "+".join(d)] for s, d in zip(kept, drops)}
    if sweep.noise is not None:
        record["noise"] = noise_sweep(res, mods, sweep.noise)
    if sweep.retrieval:
        record["retrieval"] = retrieval(res, sweep.retrieval)  # type: ignore[arg-type]
    if sweep.probes:
        record["probes"] = step_probes(res)
    if sweep.shuffled:
        record["shuffled"] = shuffled_terms(res, mods)
    record["seconds"] = time.perf_counter() - t0
    return record


def missing_modality_metrics(
    trainer: L.Trainer,
    module: L.LightningModule,
    dm: MultimodalDataModule,
    drops: Iterable[Sequence[str]],
    split: str = "test",
) -> dict[str, dict[str, float]]:
    """Test metrics with each group of modalities in ``drops`` absent
    (zeros, mask False), keyed by ``"-" + "+".join(group)``."""
    out: dict[str, dict[str, float]] = {}
    base = dm.splits[split]
    for group in drops:
        loader = dm.loader(base.with_missing(group))
        res = trainer.test(module, dataloaders=loader, verbose=False)[0]
        out["-" + "+".join(group)] = {k: float(v) for k, v in res.items()}
    return out


def noise_sweep(res: Any, modalities: list[str], noise: NoiseConfig) -> dict[str, dict[str, dict[str, float]]]:
    """``{modality: {level: test metrics}}`` with that modality corrupted."""
    from mmrefine.evaluation.robustness import corrupt

    dm, out = res.datamodule, {}
    for m in modalities:
        out[m] = {}
        for level in noise.levels:
            ds = corrupt(dm.splits["test"], m, noise.kind, level, noise.seed)
            r = res.trainer.test(res.module, dataloaders=dm.loader(ds), verbose=False)[0]
            out[m][str(level)] = {k: float(v) for k, v in r.items()}
    return out


def retrieval(res: Any, spec: RetrievalConfig, bank: Any = None) -> dict[str, dict[str, Any]]:
    """``{modality: {k: top-k accuracy, "query": placement}}``: test unimodal
    features (other modalities absent) against training fused embeddings (``bank``: the
    training split already collected with :func:`~mmrefine.evaluation.probes.collect`)."""
    from mmrefine.evaluation.probes import collect
    from mmrefine.evaluation.retrieval import fit_linear_map, placement, topk_retrieval, unimodal_features

    dm, model = res.datamodule, res.module.model
    bank = bank if bank is not None else collect(model, dm.loader(dm.splits["train"]))
    out: dict[str, dict[str, Any]] = {}
    for m in dm.modalities:
        queries, labels = unimodal_features(model, dm.loader(dm.splits["test"]), m)
        how = placement(model, m, queries.shape[1], bank.fused.shape[1], spec.query)
        projection, offset = None, 0
        if how == "linear":
            train_q, _ = unimodal_features(model, dm.loader(dm.splits["train"]), m)
            projection = fit_linear_map(train_q, bank.fused[dm.splits["train"].mask[m]])
        elif how == "slot":
            offset = model.fused_slots[m][0]
        scores = topk_retrieval(bank.fused, bank.labels, queries, labels, spec.ks, projection, spec.hit, offset)
        out[m] = {**{str(k): v for k, v in scores.items()}, "query": how}
    return out


def shuffled_terms(res: Any, modalities: list[str], seed: int = 0) -> dict[str, dict[str, float]]:
    """``{"none" | modality: {term: value}}``: every loss term (``loss``, ``task``,
    ``refiner_<m>``, ...) and metric of the test split as it is, and with each
    modality in turn taken from another test sample (:func:`shuffle_modality`);
    keys drop the ``val/`` prefix Lightning's validation loop gives them."""
    from mmrefine.evaluation.robustness import shuffle_modality

    dm, out = res.datamodule, {}
    for name in ["none", *modalities]:
        ds = dm.splits["test"] if name == "none" else shuffle_modality(dm.splits["test"], name, seed)
        r = res.trainer.validate(res.module, dataloaders=dm.loader(ds), verbose=False)[0]
        out[name] = {k.split("/", 1)[-1]: float(v) for k, v in r.items()}
    return out


def step_probes(res: Any) -> dict[str, dict[str, float]]:
    """``{step: {modality: test accuracy}}`` of logistic-regression probes fit on the
    training split's features at each unrolled step (one step for a plain model)."""
    from mmrefine.evaluation.probes import collect, probe_steps

    dm, model = res.datamodule, res.module.model
    train = collect(model, dm.loader(dm.splits["train"]))
    test = collect(model, dm.loader(dm.splits["test"]))
    return {str(t): accs for t, accs in probe_steps(train, test).items()}


def summarize(records: list[dict[str, Any]], metric: str, baseline: str | None) -> list[Comparison]:
    """Mean ± std of ``metric`` per variant (record order) and p-values against ``baseline``."""
    by_variant: dict[str, list[float]] = {}
    for r in records:
        by_variant.setdefault(r["variant"], []).append(r["test"][metric])
    return compare(by_variant, baseline or next(iter(by_variant)))
