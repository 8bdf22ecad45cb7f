"""Self-supervised refiner losses ``C_m(R_m, T_m)`` (ReFNet, seeds 000/001).

Each takes ``reconstruction`` R and ``target`` T of shape ``(B, d)`` and returns
a scalar averaged over the batch:

* cosine:  ``C = mean_i (1 - cos(R_i, T_i))``
* mse:     ``C = mean_{i,j} (R_ij - T_ij)^2`` (element mean, as ``nn.MSELoss``)
* contrastive: with ``r_kt = cos(R_k, T_t)``,
  ``C = (1/B) sum_t sum_{k != t} max(0, margin + r_kt - r_tt)``: no other
  sample's decoding may be closer to target t than its own decoding. The MMF
  reference instead averages ``0.1 + neg - pos`` over negatives above a 0.1
  threshold; ``margin`` plays that role here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmrefine.registry import Registry

REFINER_LOSSES: Registry = Registry("refiner loss")


def _check(r: Tensor, t: Tensor) -> None:
    if r.shape != t.shape or r.dim() != 2:
        raise ValueError(f"refiner loss: reconstruction {tuple(r.shape)} and target {tuple(t.shape)} must be equal (B, d)")


@REFINER_LOSSES.register("cosine")
class CosineRefinerLoss(nn.Module):
    """``mean_i (1 - cos(R_i, T_i))``."""

    def forward(self, reconstruction: Tensor, target: Tensor) -> Tensor:
        _check(reconstruction, target)
        return (1 - F.cosine_similarity(reconstruction, target, dim=1, eps=1e-8)).mean()


@REFINER_LOSSES.register("mse")
class MSERefinerLoss(nn.Module):
    """``mean_{i,j} (R_ij - T_ij)^2``."""

    def forward(self, reconstruction: Tensor, target: Tensor) -> Tensor:
        _check(reconstruction, target)
        return F.mse_loss(reconstruction, target)


@REFINER_LOSSES.register("contrastive")
class ContrastiveRefinerLoss(nn.Module):
    """``(1/B) sum_t sum_{k != t} max(0, margin + cos(R_k, T_t) - cos(R_t, T_t))``."""

    def __init__(self, margin: float = 0.0) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, reconstruction: Tensor, target: Tensor) -> Tensor:
        _check(reconstruction, target)
        r = F.normalize(reconstruction, dim=1) @ F.normalize(target, dim=1).T  # r[k, t]
        pos = r.diagonal()
        hinge = torch.relu(self.margin + r - pos[None, :])
        off = ~torch.eye(r.shape[0], dtype=torch.bool, device=r.device)
        return (hinge * off).sum() / r.shape[0]
