"""Shared plumbing of fusion modules.

A fusion module ``A`` maps ``{m: F_m}`` (each ``(B, d_m)``) and a presence mask
``{m: (B,) bool}`` to a NamedTuple whose first field ``fused`` is ``z`` of shape
``(B, out_dim)``. Features of absent samples are zeroed (by selection) before fusion; each
module documents what absence means for its formula.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from mmrefine.core.errors import BatchError, ConfigError
from mmrefine.core.mask import check_modalities, zero_absent
from mmrefine.core.registry import Registry

FUSIONS: Registry = Registry("fusion")


class FusionModule(nn.Module):
    """Base class: fixed modality order, key/shape checks and masking."""

    out_dim: int

    def __init__(self, in_dims: Mapping[str, int]) -> None:
        super().__init__()
        if not in_dims:
            raise ConfigError("a fusion module needs at least one modality")
        self.in_dims: dict[str, int] = dict(in_dims)
        self.modalities: list[str] = list(in_dims)

    def prepare(self, features: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None) -> tuple[list[Tensor], Tensor]:
        """Return features in modality order with absent rows zeroed, and the
        float presence matrix ``P`` of shape ``(B, M)``."""
        mask = check_modalities("fusion", self.modalities, features, mask)
        feats = []
        for m in self.modalities:
            f = features[m]
            if f.dim() != 2 or f.shape[1] != self.in_dims[m]:
                raise BatchError(f"fusion input '{m}': expected (B, {self.in_dims[m]}), got {tuple(f.shape)}")
            feats.append(f)
        feats = [zero_absent(f, mask[m]) for m, f in zip(self.modalities, feats)]
        pres = torch.stack([mask[m] for m in self.modalities], dim=1).to(feats[0].dtype)
        return feats, pres


def masked_softmax(scores: Tensor, presence: Tensor, dim: int = -1) -> Tensor:
    """Softmax over present entries; rows with nothing present get all zeros."""
    scores = scores.masked_fill(presence == 0, float("-inf"))
    w = torch.softmax(scores, dim=dim)
    return torch.nan_to_num(w, nan=0.0)
