"""The transparent-wrapper base shared by the Refiner, modality-specific distillation and
Progressive Fusion around an architecture: a wrapper holds ``self.model`` and reports
its modalities, fused width, slots and feature widths, so further wrappers and the
evaluation code see through it."""

from __future__ import annotations

from torch import nn

from mmrefine.core.protocols import HasSlots


class ModelWrapper(nn.Module):
    """Delegates the :class:`~mmrefine.core.MultimodalModel` widths to ``self.model``
    (set by the subclass before use)."""

    model: nn.Module

    @property
    def modalities(self) -> list[str]:
        return list(self.model.modalities)

    @property
    def fused_dim(self) -> int:
        return int(self.model.fused_dim)

    @property
    def fused_slots(self) -> dict[str, tuple[int, int]] | None:
        return self.model.fused_slots if isinstance(self.model, HasSlots) else None

    @property
    def feature_dims(self) -> dict[str, int]:
        return dict(self.model.feature_dims)
