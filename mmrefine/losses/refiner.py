"""Self-supervised refiner losses ``C_m(R_m, T_m)`` (ReFNet, Sankaran et al.).

Each takes ``reconstruction`` R and ``target`` T shaped ``(..., B, d)`` (one
modality ``(B, d)``, or M modalities stacked ``(M, B, d)``), an optional
presence ``mask`` ``(..., B)`` and the true widths ``dims`` ``(...)`` when the
last axis is zero-padded to a common width. It returns the loss averaged over
the present samples, shaped ``(...)``:

* cosine:  ``C = mean_i (1 - cos(R_i, T_i))``
* mse:     ``C = mean_i ||R_i - T_i||^2 / d`` (element mean, as ``nn.MSELoss``)
* contrastive: with ``r_kt = cos(R_k, T_t)`` over present samples,
  ``C = (1/B) sum_t sum_{k != t} max(0, margin + r_kt - r_tt)``: no other
  sample's decoding may be closer to target t than its own decoding. The MMF
  reference instead averages ``0.1 + neg - pos`` over negatives above a 0.1
  threshold; ``margin`` plays that role here.

Zero padding changes neither cosines nor squared distances, so padded stacks
give exactly the per-modality values. A modality absent from every sample
gives 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmrefine.core.errors import BatchError
from mmrefine.core.registry import Registry

REFINER_LOSSES: Registry = Registry("refiner loss", "REFINER_LOSSES")


class RefinerLoss(nn.Module):
    """Base: shape checks and the masked mean over samples."""

    def forward(self, reconstruction: Tensor, target: Tensor, mask: Tensor | None = None, dims: Tensor | None = None) -> Tensor:
        if reconstruction.shape != target.shape or reconstruction.dim() < 2:
            raise BatchError(
                f"refiner loss: reconstruction {tuple(reconstruction.shape)} and target {tuple(target.shape)} must be equal (..., B, d)"
            )
        w = torch.ones(reconstruction.shape[:-1], device=reconstruction.device) if mask is None else mask.to(reconstruction.dtype)
        return self.compute(reconstruction, target, w, dims)

    def compute(self, r: Tensor, t: Tensor, w: Tensor, dims: Tensor | None) -> Tensor:
        raise NotImplementedError

    @staticmethod
    def masked_mean(per_sample: Tensor, w: Tensor) -> Tensor:
        return (per_sample * w).sum(-1) / w.sum(-1).clamp_min(1.0)


@REFINER_LOSSES.register("cosine")
class CosineRefinerLoss(RefinerLoss):
    """``mean_i (1 - cos(R_i, T_i))``."""

    def compute(self, r: Tensor, t: Tensor, w: Tensor, dims: Tensor | None) -> Tensor:
        return self.masked_mean(1 - F.cosine_similarity(r, t, dim=-1, eps=1e-8), w)


@REFINER_LOSSES.register("mse")
class MSERefinerLoss(RefinerLoss):
    """``mean_i ||R_i - T_i||^2 / d``."""

    def compute(self, r: Tensor, t: Tensor, w: Tensor, dims: Tensor | None) -> Tensor:
        d = r.new_tensor(float(r.shape[-1])) if dims is None else dims.to(r.dtype)[..., None]
        return self.masked_mean((r - t).square().sum(-1) / d, w)


@REFINER_LOSSES.register("contrastive")
class ContrastiveRefinerLoss(RefinerLoss):
    """``(1/B) sum_t sum_{k != t} max(0, margin + cos(R_k, T_t) - cos(R_t, T_t))``.

    Args:
        margin: the hinge margin: another sample's decoding must be this much less similar to a target than
            its own.
    """

    def __init__(self, margin: float = 0.0) -> None:
        super().__init__()
        self.margin = margin

    def compute(self, r: Tensor, t: Tensor, w: Tensor, dims: Tensor | None) -> Tensor:
        sim = F.normalize(r, dim=-1) @ F.normalize(t, dim=-1).transpose(-1, -2)  # sim[..., k, t]
        pos = sim.diagonal(dim1=-2, dim2=-1)
        hinge = torch.relu(self.margin + sim - pos[..., None, :])
        n = sim.shape[-1]
        pairs = w[..., :, None] * w[..., None, :] * (1 - torch.eye(n, device=sim.device, dtype=sim.dtype))
        return (hinge * pairs).sum((-1, -2)) / w.sum(-1).clamp_min(1.0)
