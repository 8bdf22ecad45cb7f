"""Additive attention over modality vectors.

    v_m = W_m F_m                       (projection to a common width)
    e_m = u^T tanh(U v_m)               (score)
    a   = softmax over present m of e   (absent modalities get weight 0)
    z   = sum_m a_m v_m
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

import torch
from torch import Tensor, nn

from mmrefine.fusion.base import FUSIONS, FusionModule, masked_softmax


class AttentionOutput(NamedTuple):
    fused: Tensor
    weights: Tensor  # (B, M)
    projected: Tensor  # (B, M, out_dim)


@FUSIONS.register("attention")
class AttentionFusion(FusionModule):
    """See module docstring.

    Args:
        in_dims: ``{modality: feature width}``, in fusion order (set by the builder from the encoders).
        out_dim: width of ``z`` (each modality is projected to it).
        attn_dim: width of the scoring layer.
    """

    def __init__(self, in_dims: Mapping[str, int], out_dim: int = 64, attn_dim: int = 64) -> None:
        super().__init__(in_dims)
        self.proj = nn.ModuleDict({m: nn.Linear(d, out_dim) for m, d in self.in_dims.items()})
        self.score = nn.Sequential(nn.Linear(out_dim, attn_dim), nn.Tanh(), nn.Linear(attn_dim, 1, bias=False))
        self.out_dim = out_dim

    def forward(self, features: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> AttentionOutput:
        feats, pres = self.prepare(features, mask)
        v = torch.stack([self.proj[m](f) for m, f in zip(self.modalities, feats)], dim=1)
        a = masked_softmax(self.score(v).squeeze(-1), pres)
        return AttentionOutput((a[..., None] * v).sum(1), a, v)
