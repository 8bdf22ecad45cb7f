"""Unimodal-query retrieval over fused embeddings (Refiner, Sankaran et al., Table 1 and A.8).

A bank stores fused embeddings ``z_i`` with labels. A query is a unimodal
feature ``F_m`` placed in the fused space (zero-padded when narrower, or mapped
by a given projection); its k nearest bank entries by cosine similarity are
retrieved, and top-k accuracy is the fraction of queries with at least one of
its k neighbours of the query's class.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch.nn.functional as F
from torch import Tensor

from mmrefine.core.errors import ConfigError


def to_fused_space(queries: Tensor, width: int, projection: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    if projection is not None:
        return projection(queries)
    if queries.shape[1] > width:
        raise ConfigError(f"queries of width {queries.shape[1]} exceed the fused width {width}; pass a projection")
    return F.pad(queries, (0, width - queries.shape[1]))


def topk_retrieval(
    bank: Tensor,
    bank_labels: Tensor,
    queries: Tensor,
    query_labels: Tensor,
    ks: Sequence[int] = (1, 2, 5, 10),
    projection: Callable[[Tensor], Tensor] | None = None,
) -> dict[int, float]:
    """``{k: top-k accuracy}`` (see module docstring)."""
    q = F.normalize(to_fused_space(queries, bank.shape[1], projection), dim=1)
    sim = q @ F.normalize(bank, dim=1).T
    kmax = min(max(ks), bank.shape[0])
    nearest = sim.topk(kmax, dim=1).indices
    hits = bank_labels[nearest] == query_labels[:, None]
    return {k: float(hits[:, : min(k, kmax)].any(1).float().mean()) for k in ks}
