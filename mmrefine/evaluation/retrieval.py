"""Unimodal-query retrieval over fused embeddings (Refiner, Sankaran et al., Table 1 and A.8).

A bank stores the fused embeddings ``z_i`` of the training set with their
labels. A query is a test sample's *unimodal* feature ``F_m``: computed by
:func:`unimodal_features` with every other modality absent (mask False), so no
other modality leaks into it (for Progressive Fusion, the first step's
feature, with context ``c_0 = 0``). The query is placed in the fused space
(see below), its k nearest bank entries by cosine similarity are retrieved,
and top-k accuracy is the fraction of queries with a hit among them.

Placement (``query``):

* ``pad``: zero-padded at offset 0 (the paper's A.8: "padded with zeros to
  project onto the embedding space");
* ``slot``: zero-padded *in the modality's own slot* when the fused vector is a
  concatenation of the features (``concat`` fusion without an MLP): padding at
  offset 0 would compare the query with another modality's slot;
* ``linear``: mapped by a least-squares linear map fitted on the bank's
  (unimodal feature, fused embedding) pairs of the training set; the only
  choice when the feature is wider than the fused vector;
* ``auto``: ``slot`` where the model has slots, else ``pad`` when the feature
  fits, else ``linear``.

A hit (``hit``): class labels ``(B,)`` hit when equal; multi-hot labels
``(B, C)`` hit when they ``share`` at least one label (default) or are an
``exact`` match (comparing label vectors element-wise would count shared zeros
as agreement).
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmrefine.core.errors import ConfigError
from mmrefine.core.protocols import HasSlots, HasStepFeatures
from mmrefine.data.batch import MultimodalBatch

PLACEMENTS = ("auto", "pad", "slot", "linear")
HITS = ("share", "exact")


def to_fused_space(queries: Tensor, width: int, projection: Callable[[Tensor], Tensor] | None = None, offset: int = 0) -> Tensor:
    """Queries placed in a ``width``-wide space: projected, or zero-padded from ``offset``."""
    if projection is not None:
        return projection(queries)
    if offset + queries.shape[1] > width:
        raise ConfigError(f"queries of width {queries.shape[1]} at offset {offset} exceed the fused width {width}; pass a projection")
    return F.pad(queries, (offset, width - offset - queries.shape[1]))


def hits(bank_labels: Tensor, query_labels: Tensor, hit: str = "share") -> Tensor:
    """``(Q, K)`` booleans: does bank entry ``bank_labels[k]`` (already gathered
    per query, shape ``(Q, K[, C])``) match the query's label?"""
    if hit not in HITS:
        raise ConfigError(f"retrieval hit must be one of {HITS}, got '{hit}'")
    if query_labels.dim() == 1:
        return bank_labels == query_labels[:, None]
    q = (query_labels > 0)[:, None, :]
    b = bank_labels > 0
    return (b & q).any(-1) if hit == "share" else (b == q).all(-1)


def topk_retrieval(
    bank: Tensor,
    bank_labels: Tensor,
    queries: Tensor,
    query_labels: Tensor,
    ks: Sequence[int] = (1, 2, 5, 10),
    projection: Callable[[Tensor], Tensor] | None = None,
    hit: str = "share",
    offset: int = 0,
) -> dict[int, float]:
    """``{k: top-k accuracy}`` (see module docstring); queries are placed by
    ``projection`` or zero-padded from ``offset``."""
    q = F.normalize(to_fused_space(queries, bank.shape[1], projection, offset), dim=1)
    sim = q @ F.normalize(bank, dim=1).T
    kmax = min(max(ks), bank.shape[0])
    nearest = sim.topk(kmax, dim=1).indices
    ok = hits(bank_labels[nearest], query_labels, hit)
    return {k: float(ok[:, : min(k, kmax)].any(1).float().mean()) for k in ks}


@torch.no_grad()
def unimodal_features(model: nn.Module, batches: Iterable[MultimodalBatch], modality: str) -> tuple[Tensor, Tensor | None]:
    """``F_m`` of every sample where ``modality`` is present, computed with every
    other modality absent (Progressive Fusion: the first step's feature), and
    those samples' labels."""
    was = model.training
    model.eval()
    feats, labels = [], []
    try:
        for b in batches:
            keep = b.mask[modality]
            mask = {m: (k if m == modality else torch.zeros_like(k)) for m, k in b.mask.items()}
            out = model(b.inputs, mask)
            f = out.fusion.step_features[0][modality] if isinstance(out.fusion, HasStepFeatures) else out.features[modality]
            feats.append(f[keep])
            if b.labels is not None:
                labels.append(b.labels[keep])
    finally:
        model.train(was)
    return torch.cat(feats), (torch.cat(labels) if labels else None)


def placement(model: nn.Module, modality: str, query_width: int, fused_width: int, query: str = "auto") -> str:
    """The placement ``auto`` resolves to for this model and modality (see module docstring)."""
    if query not in PLACEMENTS:
        raise ConfigError(f"retrieval query must be one of {PLACEMENTS}, got '{query}'")
    slots = model.fused_slots if isinstance(model, HasSlots) else None
    if query == "slot" and (slots is None or modality not in slots):
        raise ConfigError(f"retrieval query 'slot': the model's fused vector has no slot for '{modality}' (not a plain concatenation)")
    if query != "auto":
        return query
    if slots is not None and modality in slots:
        return "slot"
    return "pad" if query_width <= fused_width else "linear"


def fit_linear_map(features: Tensor, fused: Tensor) -> Callable[[Tensor], Tensor]:
    """Least-squares ``[F, 1] -> z`` fitted on training pairs."""
    x = torch.cat([features, features.new_ones(len(features), 1)], 1).double()
    w = torch.linalg.lstsq(x, fused.double()).solution
    return lambda q: (torch.cat([q, q.new_ones(len(q), 1)], 1).double() @ w).to(q.dtype)
