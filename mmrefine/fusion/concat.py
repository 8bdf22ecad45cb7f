"""Concatenation (late) fusion."""

from __future__ import annotations

import itertools
from typing import Mapping, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from mmrefine.core.layers import mlp
from mmrefine.fusion.base import FUSIONS, FusionModule


class ConcatOutput(NamedTuple):
    fused: Tensor
    concatenated: Tensor


@FUSIONS.register("concat")
class ConcatFusion(FusionModule):
    """``z = MLP([F_1; ...; F_M])`` (``MLP`` = identity when ``hidden`` is empty
    and ``out_dim`` is None). Absent modalities contribute zeros.

    Args:
        in_dims: ``{modality: feature width}``, in fusion order (set by the builder from the encoders).
        hidden: hidden widths of the MLP after concatenation.
        out_dim: output width of the MLP (None with no ``hidden``: the plain concatenation).
        dropout: dropout after each MLP activation.
    """

    def __init__(
        self,
        in_dims: Mapping[str, int],
        hidden: Sequence[int] = (),
        out_dim: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(in_dims)
        total = sum(self.in_dims.values())
        dims = [total, *hidden] + ([out_dim] if out_dim is not None else [])
        self.mlp = mlp(dims, dropout, final_activation=True) if len(dims) > 1 else nn.Identity()
        self.out_dim = dims[-1]

    @property
    def slots(self) -> dict[str, tuple[int, int]] | None:
        """Where each modality sits in ``z``, when ``z`` is the plain concatenation."""
        if not isinstance(self.mlp, nn.Identity):
            return None
        ends = list(itertools.accumulate(self.in_dims.values()))
        return {m: (e - d, e) for (m, d), e in zip(self.in_dims.items(), ends)}

    def forward(self, features: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> ConcatOutput:
        feats, _ = self.prepare(features, mask)
        cat = torch.cat(feats, dim=1)
        return ConcatOutput(self.mlp(cat), cat)
