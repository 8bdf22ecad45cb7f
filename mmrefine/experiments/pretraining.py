"""Where a Refiner's few-label gain comes from (ReFNet, Sankaran et al.): study tools over
finished sweeps.

* :func:`label_curve`: a metric against the labelled fraction, per variant, from several
  sweeps that differ in ``data.labelled_fraction`` (each point: the seeds' values; plotted as
  mean with a Student-t confidence band).
* :func:`pretraining_probe`: the fused embedding of a run that was pretrained with the
  refiner losses, *before* pretraining (the model its seed builds, as pretraining started
  from it) and *after* (``pretrain/model.safetensors``): logistic-regression probe accuracy
  on the test split, fit on the run's labelled training samples and on all of them, and
  unimodal-query retrieval (test features of one modality against the training fused
  embeddings, :func:`mmrefine.experiments.sweep.retrieval`).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, Sequence

import torch
from safetensors.torch import load_file

from mmrefine.config import load_config
from mmrefine.core.errors import CheckpointMismatchError, ConfigError, DataError
from mmrefine.data.settings import DataSettings
from mmrefine.experiments.sweep import RetrievalConfig, load_sweep, read_records, retrieval


def label_curve(sweeps: Sequence[tuple[str | Path, str | Path]], metric: str,
                partial: bool = False) -> dict[str, dict[float, list[float]]]:
    """``{variant: {labelled fraction: [metric per seed]}}`` from ``(sweep config, sweep
    output)`` pairs; each variant's fraction is its resolved ``data.labelled_fraction``.

    A point holds every seed its sweep lists: a variant with fewer records in a sweep (runs
    still to come) is left out of that sweep's points unless ``partial``."""
    curve: dict[str, dict[float, list[float]]] = {}
    for config, out in sweeps:
        sweep = load_sweep(config)
        records = read_records(out)
        if not records:
            raise DataError(f"{out}: no runs.jsonl records")
        if not partial:
            done = {(r["variant"], r["seed"]) for r in records}  # as run_sweep reads them
            records = [r for r in records if r["variant"] not in sweep.variants or all((r["variant"], s) in done for s in sweep.seeds)]
        fraction: dict[str, float] = {}
        for r in records:
            name = r["variant"]
            if name not in sweep.variants:
                raise ConfigError(f"{out}: variant '{name}' is not in {config} ({', '.join(sweep.variants)})")
            if name not in fraction:
                cfg = load_config(Path(config).parent / sweep.experiment, data=sweep.variants[name])
                fraction[name] = float(cfg.data.get("labelled_fraction", DataSettings.labelled_fraction))
            if metric not in r["test"]:
                raise DataError(f"{out}: run {name} seed {r['seed']} has no test metric '{metric}'")
            curve.setdefault(name, {}).setdefault(fraction[name], []).append(float(r["test"][metric]))
    return {name: dict(sorted(points.items())) for name, points in curve.items()}


def _measure(model: torch.nn.Module, dm: Any, ks: Sequence[int]) -> dict[str, Any]:
    from mmrefine.evaluation.probes import collect, linear_probe

    train = collect(model, dm.loader(dm.splits["train"]))
    test = collect(model, dm.loader(dm.splits["test"]))
    if train.labels is None or test.labels is None:
        raise DataError("pretraining_probe needs labels on the training and test splits")
    labelled = torch.as_tensor(dm.labelled_indices())
    res = SimpleNamespace(datamodule=dm, module=SimpleNamespace(model=model))
    return {
        "probe_labelled": linear_probe(train.fused[labelled], train.labels[labelled], test.fused, test.labels),
        "probe_all": linear_probe(train.fused, train.labels, test.fused, test.labels),
        "retrieval": retrieval(res, RetrievalConfig(ks=list(ks)), bank=train),
    }


def pretraining_probe(run_dir: str | Path, ks: Sequence[int] = (1, 5, 10)) -> dict[str, dict[str, Any]]:
    """``{"before": measures, "after": measures}`` for a finished run with a pretraining stage
    (see module docstring); ``measures``: ``probe_labelled``, ``probe_all`` (test accuracy) and
    ``retrieval`` (``{modality: {k: top-k accuracy, "query": placement}}``)."""
    from mmrefine.training.engine import prepare

    run_dir = Path(run_dir)
    weights = run_dir / "pretrain" / "model.safetensors"
    if not weights.is_file():
        raise DataError(f"{run_dir}: no pretrain/model.safetensors (was the run pretrained, and did pretraining finish?)")
    cfg = load_config(run_dir / "config.yaml")
    dm, _, model = prepare(cfg)  # seeded as the run was: the weights pretraining started from
    out = {"before": _measure(model, dm, ks)}
    state = load_file(weights)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointMismatchError(f"{weights} does not fit the model of {run_dir / 'config.yaml'}: {exc}") from exc
    out["after"] = _measure(model, dm, ks)
    return out
