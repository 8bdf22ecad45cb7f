"""What every mmrefine model returns."""

from __future__ import annotations

from typing import Any, NamedTuple

from torch import Tensor


class ModelOutput(NamedTuple):
    """The output of a :class:`~mmrefine.core.MultimodalModel`.

    Attributes:
        logits: ``(B, out_dim)`` predictions before the task's link function.
        fused: ``(B, fused_dim)`` the fused embedding ``z``.
        features: ``{modality: (B, feature_dims[m])}`` the per-modality
            representations ``F_m`` a Refiner reconstructs (encoder outputs, or
            pooled token spans for transformer fusions).
        fusion: the fusion module's own NamedTuple (GMU gates, attention
            weights, ...), or an architecture's internals.
        steps: the fused vector of every unrolled step of a Progressive Fusion
            model, else None.
    """

    logits: Tensor
    fused: Tensor
    features: dict[str, Tensor]
    fusion: Any = None
    steps: tuple[Tensor, ...] | None = None
