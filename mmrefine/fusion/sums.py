"""Additive fusions: linear sum and learned weighted sum."""

from __future__ import annotations

from typing import Mapping, NamedTuple

import torch
from torch import Tensor, nn

from mmrefine.core.errors import ConfigError
from mmrefine.fusion.base import FUSIONS, FusionModule, masked_softmax


class LinearSumOutput(NamedTuple):
    fused: Tensor
    projected: Tensor  # (B, M, out_dim)


@FUSIONS.register("linear_sum")
class LinearSumFusion(FusionModule):
    """``z = sum_m p_m (W_m F_m + b_m)`` with ``p_m`` the presence of modality m
    (an absent modality adds nothing, bias included).

    Args:
        in_dims: ``{modality: feature width}``, in fusion order (set by the builder from the encoders).
        out_dim: width of ``z``.
    """

    def __init__(self, in_dims: Mapping[str, int], out_dim: int = 64) -> None:
        super().__init__(in_dims)
        self.proj = nn.ModuleDict({m: nn.Linear(d, out_dim) for m, d in self.in_dims.items()})
        self.out_dim = out_dim

    def forward(self, features: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> LinearSumOutput:
        feats, pres = self.prepare(features, mask)
        proj = torch.stack([self.proj[m](f) for m, f in zip(self.modalities, feats)], dim=1) * pres[..., None]
        return LinearSumOutput(proj.sum(1), proj)


class WeightedSumOutput(NamedTuple):
    fused: Tensor
    weights: Tensor  # (B, M), rows sum to 1 over present modalities


@FUSIONS.register("weighted_sum")
class WeightedSumFusion(FusionModule):
    """``z = sum_m w_m W_m F_m`` with ``w = softmax(theta)`` over the present
    modalities (learned scalars ``theta``; renormalised when some are absent).
    ``W_m`` is the identity when ``out_dim`` is None and all widths agree.

    Args:
        in_dims: ``{modality: feature width}``, in fusion order (set by the builder from the encoders).
        out_dim: width of ``z`` (None: no projection; all widths must agree).
    """

    def __init__(self, in_dims: Mapping[str, int], out_dim: int | None = 64) -> None:
        super().__init__(in_dims)
        if out_dim is None:
            widths = set(self.in_dims.values())
            if len(widths) != 1:
                raise ConfigError(f"weighted_sum without out_dim needs equal feature widths, got {self.in_dims}")
            self.proj = nn.ModuleDict({m: nn.Identity() for m in self.modalities})
            out_dim = widths.pop()
        else:
            self.proj = nn.ModuleDict({m: nn.Linear(d, out_dim) for m, d in self.in_dims.items()})
        self.logits = nn.Parameter(torch.zeros(len(self.modalities)))
        self.out_dim = out_dim

    def forward(self, features: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> WeightedSumOutput:
        feats, pres = self.prepare(features, mask)
        proj = torch.stack([self.proj[m](f) for m, f in zip(self.modalities, feats)], dim=1)
        w = masked_softmax(self.logits.expand_as(pres), pres)
        return WeightedSumOutput((w[..., None] * proj).sum(1), w)
