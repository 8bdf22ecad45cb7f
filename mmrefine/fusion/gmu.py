"""Gated Multimodal Unit (Arevalo et al.), N-ary form.

    h_m = tanh(W_m F_m)
    g_m = sigmoid(W_g,m [F_1; ...; F_M]) * p_m
    z   = sum_m g_m ⊙ h_m

``g_m`` are per-dimension gates in [0, 1] (returned), ``p_m`` the presence of
modality m: an absent modality is zeroed in the gate input and its gate is 0.
The bimodal reference code uses a single gate ``g`` and ``1 - g``; the N-ary
form above (one gate per modality, as in MulT-GMU) is what the MulT-GMU paper (Rodríguez-Bribiesca et al., MAI 2021) describes.
Following the reference, projections have no bias unless ``bias=True``.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

import torch
from torch import Tensor, nn

from mmrefine.fusion.base import FUSIONS, FusionModule


class GMUOutput(NamedTuple):
    fused: Tensor
    gates: Tensor  # (B, M, out_dim)
    hidden: Tensor  # (B, M, out_dim), tanh projections


@FUSIONS.register("gmu")
class GMUFusion(FusionModule):
    """See module docstring.

    Args:
        in_dims: ``{modality: feature width}``, in fusion order (set by the builder from the encoders).
        out_dim: width of ``z``, ``h_m`` and the gates.
        bias: give the projections and gates a bias (the reference has none).
        dropout: dropout on the features before projection and gating.
    """

    def __init__(self, in_dims: Mapping[str, int], out_dim: int = 64, bias: bool = False, dropout: float = 0.0) -> None:
        super().__init__(in_dims)
        total = sum(self.in_dims.values())
        self.proj = nn.ModuleDict({m: nn.Linear(d, out_dim, bias=bias) for m, d in self.in_dims.items()})
        self.gate = nn.ModuleDict({m: nn.Linear(total, out_dim, bias=bias) for m in self.modalities})
        self.dropout = nn.Dropout(dropout)
        self.out_dim = out_dim

    def forward(self, features: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> GMUOutput:
        feats, pres = self.prepare(features, mask)
        cat = self.dropout(torch.cat(feats, dim=1))
        h = torch.stack([torch.tanh(self.proj[m](self.dropout(f))) for m, f in zip(self.modalities, feats)], dim=1)
        g = torch.stack([torch.sigmoid(self.gate[m](cat)) for m in self.modalities], dim=1) * pres[..., None]
        return GMUOutput((g * h).sum(1), g, h)
