"""Figures for reports (matplotlib, Agg backend; each writes one PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:  # a sweep's report draws no tensors: it loads no torch
    import torch


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def training_curves(logs: "pandas.DataFrame", path: str | Path) -> Path:  # noqa: F821
    """Epoch-level training and validation losses, and validation metrics."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    loss_cols = [c for c in logs.columns if c.endswith("loss_epoch") or c == "val/loss"]
    metric_cols = [c for c in logs.columns if c.startswith("val/") and not c.startswith("val/loss") and "refiner" not in c
                   and c not in ("val/task", "val/ms", "val/mjs")]
    for ax, cols, title in ((axes[0], loss_cols, "losses"), (axes[1], metric_cols, "validation metrics")):
        for c in cols:
            d = logs[["epoch", c]].dropna()
            if len(d):
                ax.plot(d["epoch"], d[c], marker=".", label=c)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        if cols:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def tsne(embeddings: torch.Tensor, labels: torch.Tensor, path: str | Path, title: str = "t-SNE of fused embeddings", seed: int = 0) -> Path:
    """2-D t-SNE of embeddings coloured by class."""
    from sklearn.manifold import TSNE

    plt = _plt()
    x = embeddings.numpy()
    xy = TSNE(n_components=2, init="pca", random_state=seed, perplexity=min(30, max(5, len(x) // 4))).fit_transform(x)
    fig, ax = plt.subplots(figsize=(5, 5))
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=labels.numpy(), cmap="tab10", s=6)
    ax.legend(*sc.legend_elements(), fontsize=6, loc="best", title="class")
    return _save_scatter(plt, fig, ax, title, path)


def _save_scatter(plt, fig, ax, title: str, path: str | Path) -> Path:  # type: ignore[no-untyped-def]
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def gates_per_class(gates: torch.Tensor, labels: torch.Tensor, modalities: Sequence[str], path: str | Path) -> Path:
    """Mean GMU gate (averaged over dimensions) per modality and class."""
    plt = _plt()
    g = gates.mean(-1).numpy()  # (N, M)
    classes = np.unique(labels.numpy())
    means = np.stack([g[labels.numpy() == c].mean(0) for c in classes])  # (C, M)
    fig, ax = plt.subplots(figsize=(1.2 + 0.5 * len(classes), 0.8 + 0.45 * len(modalities)))
    im = ax.imshow(means.T, aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), [str(c) for c in classes])
    ax.set_yticks(range(len(modalities)), list(modalities))
    ax.set_xlabel("class")
    ax.set_title("mean GMU gate")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def robustness_curves(curves: Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[float]]], path: str | Path,
                      xlabel: str = "noise level", ylabel: str = "metric") -> Path:
    """``{name: (levels, mean, spread)}`` as lines with shaded mean ± spread (a standard
    deviation, or a confidence interval's half-width)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    styles = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D")]  # curves that coincide stay visible
    for i, (name, (lv, m, s)) in enumerate(curves.items()):
        lv, m, s = map(np.asarray, (lv, m, s))
        line, marker = styles[i % len(styles)]
        ax.plot(lv, m, linestyle=line, marker=marker, label=name)
        ax.fill_between(lv, m - s, m + s, alpha=0.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def tsne_by_modality(features: Mapping[str, torch.Tensor], path: str | Path, seed: int = 0, per_modality: int = 500) -> Path:
    """2-D t-SNE of the per-modality representations together (zero-padded to a
    common width), coloured by modality: separated clouds mean the
    representations keep modality-specific information."""
    from sklearn.manifold import TSNE

    plt = _plt()
    width = max(f.shape[1] for f in features.values())
    names = list(features)
    import torch

    xs = [torch.nn.functional.pad(f[:per_modality], (0, width - f.shape[1])) for f in features.values()]
    x = torch.cat(xs).numpy()
    tag = np.concatenate([np.full(len(v), i) for i, v in enumerate(xs)])
    xy = TSNE(n_components=2, init="pca", random_state=seed, perplexity=min(30, max(5, len(x) // 4))).fit_transform(x)
    fig, ax = plt.subplots(figsize=(5, 5))
    for i, n in enumerate(names):
        ax.scatter(xy[tag == i, 0], xy[tag == i, 1], s=5, label=n)
    ax.legend(fontsize=7, markerscale=3)
    return _save_scatter(plt, fig, ax, "t-SNE of unimodal representations by modality", path)


def before_after(values: Mapping[str, Mapping[str, Sequence[float]]], path: str | Path, ylabel: str = "metric",
                 title: str = "") -> Path:
    """``{measure: {state: per-seed values}}`` (states such as ``before`` / ``after``) as grouped
    bars of the mean with every seed's value as a dot."""
    plt = _plt()
    measures = list(values)
    states = list(dict.fromkeys(st for per in values.values() for st in per))
    width = 0.8 / max(1, len(states))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(measures) + 2), 3.5))
    for j, st in enumerate(states):
        xs = np.arange(len(measures)) + (j - (len(states) - 1) / 2) * width
        means = [float(np.mean(values[m][st])) if values[m].get(st) else np.nan for m in measures]
        ax.bar(xs, means, width, label=st, alpha=0.75)
        for x, m in zip(xs, measures):
            seeds = list(values[m].get(st, []))
            ax.scatter([x] * len(seeds), seeds, s=10, color="black", zorder=3)
    ax.set_xticks(np.arange(len(measures)), measures, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
