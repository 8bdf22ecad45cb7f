"""Tensor fusion (Zadeh et al.) and low-rank tensor fusion (Liu et al.).

Both append a constant 1 to every feature, ``F'_m = [F_m; 1]``, so the product
keeps all lower-order (unimodal, bimodal, ...) interactions. An absent modality
becomes ``[0; 1]``: its interaction terms vanish and the rest are kept.
"""

from __future__ import annotations

import math
from typing import Mapping, NamedTuple

import torch
from torch import Tensor, nn

from mmrefine.core.errors import ConfigError
from mmrefine.fusion.base import FUSIONS, FusionModule


def _append_one(f: Tensor) -> Tensor:
    return torch.cat([f, f.new_ones(f.shape[0], 1)], dim=1)


class TensorFusionOutput(NamedTuple):
    fused: Tensor
    tensor: Tensor  # (B, prod_m (d_m + 1)), the flattened outer product


@FUSIONS.register("tensor")
class TensorFusion(FusionModule):
    """``z = W vec(F'_1 ⊗ F'_2 ⊗ ... ⊗ F'_M) + b`` (``W`` omitted when
    ``out_dim`` is None). The product has ``prod_m (d_m + 1)`` entries: keep the
    feature widths small.

    Args:
        in_dims: ``{modality: feature width}``, in fusion order (set by the builder from the encoders).
        out_dim: width of ``z`` (None: the flattened outer product itself).
        max_size: refuse outer products with more entries than this.
    """

    def __init__(self, in_dims: Mapping[str, int], out_dim: int | None = 64, max_size: int = 2_000_000) -> None:
        super().__init__(in_dims)
        size = math.prod(d + 1 for d in self.in_dims.values())
        if size > max_size:
            raise ConfigError(
                f"tensor fusion of widths {self.in_dims} has {size:,} entries (> max_size {max_size:,}); "
                "use smaller encoders or low_rank_tensor"
            )
        self.proj = nn.Linear(size, out_dim) if out_dim is not None else None
        self.out_dim = out_dim if out_dim is not None else size

    def forward(self, features: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> TensorFusionOutput:
        feats, _ = self.prepare(features, mask)
        t = _append_one(feats[0])
        for f in feats[1:]:
            t = (t[:, :, None] * _append_one(f)[:, None, :]).flatten(1)
        return TensorFusionOutput(self.proj(t) if self.proj is not None else t, t)


class LowRankOutput(NamedTuple):
    fused: Tensor
    modality_factors: Tensor  # (B, M, rank, out_dim): F'_m W_m^(r)


@FUSIONS.register("low_rank_tensor")
class LowRankTensorFusion(FusionModule):
    """``z = sum_r w_r prod_m (F'_m W_m^(r)) + b`` with factors
    ``W_m in R^{rank x (d_m+1) x out}`` (Xavier normal) held in an
    ``nn.ParameterList``, so they are registered, optimised and saved (the
    MultiBench version keeps them in a Python list: on GPU they never train).

    Args:
        in_dims: ``{modality: feature width}``, in fusion order (set by the builder from the encoders).
        out_dim: width of ``z``.
        rank: number of rank-one factors ``r``.
    """

    def __init__(self, in_dims: Mapping[str, int], out_dim: int = 64, rank: int = 4) -> None:
        super().__init__(in_dims)
        self.rank = rank
        self.factors = nn.ParameterList(
            [nn.Parameter(nn.init.xavier_normal_(torch.empty(rank, d + 1, out_dim))) for d in self.in_dims.values()]
        )
        self.fusion_weights = nn.Parameter(nn.init.xavier_normal_(torch.empty(1, rank)))
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.out_dim = out_dim

    def forward(self, features: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> LowRankOutput:
        feats, _ = self.prepare(features, mask)
        per_mod = torch.stack(
            [torch.einsum("bd,rdo->bro", _append_one(f), w) for f, w in zip(feats, self.factors)], dim=1
        )
        prod = per_mod.prod(dim=1)  # (B, rank, out)
        z = torch.einsum("r,bro->bo", self.fusion_weights[0], prod) + self.bias
        return LowRankOutput(z, per_mod)
