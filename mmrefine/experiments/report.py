"""``mmrefine report DIR``: one self-contained Markdown report per run or sweep.

* a run directory (``config.yaml`` + ``metrics.json``): the config, validation
  and test metrics, training curves, a t-SNE of the test set's fused
  embeddings by class, GMU gates per class when the model has them, and test
  metrics with each modality missing;
* a sweep directory (``runs.jsonl``): mean ± std per variant with Welch
  p-values against the baseline, metrics with each modality missing, and
  robustness curves per modality with relative robustness against the baseline.

Figures are PNG files beside ``report.md``.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import yaml

from mmrefine.core.errors import CheckpointMismatchError, ConfigError, DataError
from mmrefine.evaluation import figures
from mmrefine.evaluation.robustness import percentage_drop
from mmrefine.evaluation.statistics import compare, mean_std
from mmrefine.experiments.document import Bars, Chart, Lines, Table, Text


def write_report(directory: str | Path, baseline: str | None = None, metric: str | None = None, html: bool = False) -> Path:
    """``report.md`` for a run or a sweep directory; for a sweep, ``html`` also writes
    ``report.html`` (one self-contained page: sortable tables, bar charts with error
    bars, training curves per variant; :mod:`mmrefine.experiments.document`)."""
    d = Path(directory)
    if (d / "runs.jsonl").is_file():
        return sweep_report(d, baseline, metric, html)
    if html:
        raise ConfigError(f"--html is for a sweep directory (runs.jsonl); {d} is not one")
    if (d / "metrics.json").is_file() and (d / "config.yaml").is_file():
        return run_report(d)
    raise DataError(f"{d} is neither a run directory (config.yaml + metrics.json) nor a sweep directory (runs.jsonl)")


def metric_direction(record: dict, metric: str) -> str:
    """``max`` or ``min`` for ``metric``, as the run's task defines it: stored in
    the record, or (records written before directions were stored) read from
    the task of the run's saved config."""
    if metric in record.get("directions", {}):
        return record["directions"][metric]
    from mmrefine.training.tasks import TASKS

    cfg_path = Path(record["run_dir"]) / "config.yaml"
    if not cfg_path.is_file():
        raise DataError(f"cannot tell whether higher '{metric}' is better: the record has no directions and {cfg_path} is missing")
    task = (yaml.safe_load(cfg_path.read_text()) or {}).get("task") or {"name": "classification"}
    return TASKS.get(task["name"], "task.name").metric_mode(metric)


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *["| " + " | ".join(r) + " |" for r in rows]]


def run_report(d: Path) -> Path:
    from mmrefine.config import load_config
    from mmrefine.training.engine import read_metrics

    cfg = load_config(d / "config.yaml")
    metrics = read_metrics(d)
    try:
        return _run_report(d, cfg, metrics)
    except ConfigError as exc:  # the run's own config no longer builds
        if str(d) in str(exc):
            raise
        raise ConfigError(f"{d / 'config.yaml'}: {exc}") from exc


def _run_report(d: Path, cfg: Any, metrics: dict) -> Path:
    from mmrefine.config import to_dict
    from mmrefine.evaluation.probes import collect
    from mmrefine.training.engine import load_module
    from mmrefine.training.logs import read_logs

    lines = [f"# Run report: `{d}`", "", "## Metrics (best checkpoint)", ""]
    rows = [[k, f"{v:.4f}"] for split in ("val", "test") for k, v in metrics[split].items()]
    lines += _table(["metric", "value"], rows)
    logs = read_logs(d / "train")
    figures.training_curves(logs, d / "training_curves.png")
    lines += ["", "## Training curves", "", "![training curves](training_curves.png)", ""]
    if metrics.get("best_checkpoint"):
        from mmrefine.evaluation.probes import probe_steps

        try:
            dm, module = load_module(cfg, metrics["best_checkpoint"])
        except CheckpointMismatchError as exc:
            raise CheckpointMismatchError(f"{d / 'config.yaml'} does not describe the model of this run: {exc}") from exc
        col = collect(module.model, dm.loader(dm.splits["test"]))
        figures.tsne_by_modality(col.features, d / "tsne_modalities.png")
        lines += ["## Unimodal representations by modality (test set, t-SNE)", "", "![t-SNE by modality](tsne_modalities.png)", ""]
        if col.step_features and col.labels is not None and col.labels.dim() == 1:
            train = collect(module.model, dm.loader(dm.splits["train"]))
            probes = probe_steps(train, col)
            mods = list(probes[1])
            lines += ["## Linear probes of unimodal representations per Progressive Fusion step", "",
                      "Test accuracy of a logistic regression fit on the training set's representations.", ""]
            lines += _table(["step", *mods], [[str(t), *[f"{probes[t][m]:.4f}" for m in mods]] for t in probes])
            lines += [""]
        if col.labels is not None and col.labels.dim() == 1 and not col.labels.is_floating_point():
            figures.tsne(col.fused, col.labels, d / "tsne.png")
            lines += ["## Fused embeddings (test set, t-SNE)", "", "![t-SNE](tsne.png)", ""]
            if col.gates is not None:
                figures.gates_per_class(col.gates, col.labels, dm.modalities, d / "gates.png")
                lines += ["## GMU gates per class", "", "![gates](gates.png)", ""]
    lines += ["## Configuration", "", "```yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False).strip(), "```", ""]
    out = d / "report.md"
    out.write_text("\n".join(lines))
    return out


def _fmt(xs: list[float]) -> str:
    m, s = mean_std(xs)
    return f"{m:.4f} ± {s:.4f}"


def sweep_report(d: Path, baseline: str | None = None, metric: str | None = None, html: bool = False) -> Path:
    """Write ``report.md`` for the sweep in ``d`` (and ``report.html`` with ``html``); return the Markdown's path."""
    from mmrefine.experiments.document import html_page, markdown

    blocks = sweep_blocks(d, baseline, metric)
    out = d / "report.md"
    out.write_text(markdown([b for b in blocks if not (isinstance(b, Chart) and b.png is None)]))
    if html:
        (d / "report.html").write_text(html_page(f"Sweep report: {d}", blocks))
    return out


def sweep_blocks(d: Path, baseline: str | None = None, metric: str | None = None) -> list[Any]:
    """The sweep report as blocks (:mod:`mmrefine.experiments.document`): the Markdown's text and
    tables, in order, and the charts the HTML page draws beside them."""
    from mmrefine.evaluation.robustness import relative_robustness, scale_unit
    from mmrefine.experiments.sweep import read_records

    records = read_records(d)
    if not records:
        raise DataError(f"{d / 'runs.jsonl'} holds no finished run")
    variants = list(dict.fromkeys(r["variant"] for r in records))
    baseline = baseline or variants[0]
    metric = metric or next(iter(records[0]["test"]))
    higher = metric_direction(records[0], metric) == "max"
    by = {v: [r for r in records if r["variant"] == v] for v in variants}
    comp = {c.name: c for c in compare({v: [r["test"][metric] for r in rs] for v, rs in by.items()}, baseline)}
    blocks: list[Any] = [Text([f"# Sweep report: `{d}`", "", f"Test `{metric}`, mean ± std over seeds; p: Welch's t-test against `{baseline}`.", ""])]
    blocks.append(Table(["variant", "seeds", metric, "p"], [
        [v, ",".join(str(r["seed"]) for r in rs), _fmt([r["test"][metric] for r in rs]),
         "-" if math.isnan(comp[v].p_value) else f"{comp[v].p_value:.4f}"] for v, rs in by.items()
    ]))
    blocks.append(Chart(f"Test {metric} per variant (mean, error bars ± 1 std over seeds)",
                        Bars(variants, [metric], {v: {metric: mean_std([r["test"][metric] for r in rs])} for v, rs in by.items()}), metric))
    blocks += training_curve_charts(by, metric)
    if all("missing" in r for r in records):
        mods = list(records[0]["missing"])
        blocks.append(Text(["", f"## Test `{metric}` with one modality missing", "",
                            f"`mean`: per seed, the mean over the single-missing columns; p: Welch's t-test of that mean against `{baseline}`.", ""]))
        means = {v: [statistics.fmean(r["missing"][m][metric] for m in mods) for r in rs] for v, rs in by.items()}
        miss_comp = {c.name: c for c in compare(means, baseline)}
        blocks.append(Table(["variant", *[f"no {m}" for m in mods], "mean", "p"], [
            [v, *[_fmt([r["missing"][m][metric] for r in rs]) for m in mods], _fmt(means[v]),
             "-" if math.isnan(miss_comp[v].p_value) else f"{miss_comp[v].p_value:.4f}"] for v, rs in by.items()
        ]))
        settings = ["all", *[f"no {m}" for m in mods]]
        values = {s: {v: mean_std([r["test"][metric] if s == "all" else r["missing"][s[3:]][metric] for r in rs]) for v, rs in by.items()}
                  for s in settings}
        blocks.append(Chart(f"Test {metric} with every modality, and with each one missing (± 1 std over seeds)",
                            Bars(settings, variants, values), metric))
        blocks.append(Text(["", "Percentage drop `(full - degraded) / full` (UCRN's robustness table), mean over seeds:", ""]))
        blocks.append(Table(["variant", *[f"no {m}" for m in mods]], [
            [v, *[f"{100 * statistics.fmean(percentage_drop(r['test'][metric], r['missing'][m][metric]) for r in rs):.1f}%" for m in mods]]
            for v, rs in by.items()
        ]))
    if all("subsets" in r for r in records):
        subs = list(records[0]["subsets"])
        blocks.append(Text(["", f"## Test `{metric}` with only these modalities present", ""]))
        blocks.append(Table(["variant", *subs, "all"], [
            [v, *[_fmt([r["subsets"][s][metric] for r in rs]) for s in subs], _fmt([r["test"][metric] for r in rs])] for v, rs in by.items()
        ]))
    if all("retrieval" in r for r in records):
        mods = list(records[0]["retrieval"])
        ks = [k for k in records[0]["retrieval"][mods[0]] if k != "query"]
        blocks.append(Text(["", "## Unimodal-query retrieval", "",
                            "Top-k accuracy: a test sample's unimodal feature, computed with every other modality absent, queries the "
                            "training set's fused embeddings by cosine similarity; a hit is a class match (multi-label: a shared label) "
                            "among the k nearest. `placement`: how the query enters the fused space (`pad`: zero-padded at offset 0, "
                            "`slot`: in its own slot of a concatenation, `linear`: a least-squares map fitted on the training set).", ""]))
        blocks.append(Table(["variant", "query", "placement", *[f"top-{k}" for k in ks]], [
            [v, m, str(rs[0]["retrieval"][m].get("query", "pad (offset 0, all modalities present)")),
             *[_fmt([r["retrieval"][m][k] for r in rs]) for k in ks]] for v, rs in by.items() for m in mods
        ]))
    if all("noise" in r for r in records):
        blocks.append(Text(["", "## Robustness to noise", ""]))
        rob_rows = []
        for m in records[0]["noise"]:
            levels = [float(x) for x in records[0]["noise"][m]]
            curves, taus = {}, {}
            for v, rs in by.items():
                vals = [[r["noise"][m][str(lv)][metric] for r in rs] for lv in levels]
                curves[v] = (levels, [mean_std(x)[0] for x in vals], [mean_std(x)[1] for x in vals])
            for v in by:
                taus[v] = relative_robustness(levels, curves[v][1], curves[baseline][1], higher_is_better=higher)
            scaled = scale_unit(taus)
            figures.robustness_curves(curves, d / f"robustness_{m}.png", xlabel=f"noise level on {m}", ylabel=metric)
            blocks.append(Chart(f"robustness {m}", Lines(curves, f"noise level on {m}"), metric, png=f"robustness_{m}.png"))
            rob_rows += [[m, v, f"{taus[v]:+.4f}", f"{scaled[v]:.2f}"] for v in by]
        blocks.append(Text(["Relative robustness (area between curves against the baseline, per unit noise; "
                            "positive = more robust; scaled to [0, 1] across variants):", ""]))
        blocks.append(Table(["noisy modality", "variant", "tau", "scaled"], rob_rows))
    if all("shuffled" in r for r in records):
        kinds = list(records[0]["shuffled"])
        short = metric.split("/", 1)[-1]
        blocks.append(Text(["", "## An irrelevant modality (each modality in turn taken from another test sample)", "",
                            f"`{short}` and the summed refiner loss (`refiner_*` terms, where the model has them) on the test split, "
                            "as it is (`none`) and with one modality shuffled across samples; mean ± std over seeds.", ""]))
        rows = []
        for v, rs in by.items():
            has_refiner = any(k.startswith("refiner_") for k in rs[0]["shuffled"][kinds[0]])
            rows.append([v, *[_fmt([r["shuffled"][k][short] for r in rs]) for k in kinds],
                         *([_fmt([sum(x for kk, x in r["shuffled"][k].items() if kk.startswith("refiner_")) for r in rs])
                            for k in kinds] if has_refiner else ["-"] * len(kinds))])
        blocks.append(Table(["variant", *[f"{short}: {k}" for k in kinds], *[f"refiner loss: {k}" for k in kinds]], rows))
    if all("probes" in r for r in records):
        blocks.append(Text(["", "## Linear probes of the unimodal features per unrolled step", "",
                            "Test accuracy of a logistic-regression probe fit on the training split's features of each modality "
                            "at each step (a model without Progressive Fusion has one step); p: Welch's t-test of the last step "
                            "against step 1 of the same variant.", ""]))
        rows, probe_values, probe_steps = [], {}, []
        for v, rs in by.items():
            steps = list(rs[0]["probes"])
            for m in rs[0]["probes"][steps[0]]:
                per = [[r["probes"][t][m] for r in rs] for t in steps]
                p = compare({"1": per[0], "last": per[-1]}, "1")[1].p_value if len(steps) > 1 else math.nan
                rows.append([v, m, *[_fmt(x) for x in per], "-" if math.isnan(p) else f"{p:.4f}"])
                for i, x in enumerate(per):
                    probe_values.setdefault(f"{v}: {m}", {})[f"step {i + 1}"] = mean_std(x)
                probe_steps = max(probe_steps, [f"step {i + 1}" for i in range(len(per))], key=len)
        width = max(len(r) for r in rows) - 3
        blocks.append(Table(["variant", "modality", *[f"step {t + 1}" for t in range(width)], "p"],
                            [r[:-1] + ["-"] * (width + 3 - len(r)) + r[-1:] for r in rows]))
        blocks.append(Chart("Linear-probe test accuracy per modality and unrolled step (± 1 std over seeds)",
                            Bars(list(probe_values), probe_steps, probe_values), "probe accuracy"))
    return blocks


def training_curve_charts(by: dict[str, list[dict]], metric: str) -> list[Any]:
    """Per variant, the validation counterpart of ``metric`` and the training loss per epoch,
    mean and a band of ± 1 std over seeds, from each run's CSV logs (runs whose logs are not
    there, e.g. committed records without their run directories, are left out)."""
    from mmrefine.training.logs import read_logs

    val = "val/" + metric.split("/", 1)[-1]
    charts = []
    for key, title in ((val, f"Validation {val.split('/', 1)[-1]} per epoch"), ("train/loss_epoch", "Training loss per epoch")):
        curves = {}
        for v, rs in by.items():
            per_seed = []
            for r in rs:
                logs_dir = Path(r.get("run_dir", "")) / "train"
                if not (logs_dir / "logs").is_dir():
                    continue
                try:
                    logs = read_logs(logs_dir)
                except DataError:
                    continue
                if key in logs and "train/loss_epoch" in logs:
                    trained = set(logs.dropna(subset=["train/loss_epoch"])["epoch"])  # not the final re-validation of the best epoch
                    series = logs.dropna(subset=[key]).groupby("epoch")[key].last()
                    per_seed.append(series[series.index.isin(trained)])
            if per_seed:
                epochs = sorted(set.intersection(*[set(s.index) for s in per_seed]))
                if epochs:
                    vals = [[float(s[e]) for s in per_seed] for e in epochs]
                    curves[v] = ([e + 1 for e in epochs], [mean_std(x)[0] for x in vals], [mean_std(x)[1] for x in vals])
        if curves:
            charts.append(Chart(f"{title} (mean, band ± 1 std over seeds)", Lines(curves, "epoch"), key))
    return charts
