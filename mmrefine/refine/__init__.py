"""Model-agnostic wrappers that refine fused representations, and modality-specific distillation."""

from mmrefine.refine.distill import ModalityDistiller
from mmrefine.refine.progressive import ProgressiveFusion
from mmrefine.refine.progressive_any import InputProgressiveFusion
from mmrefine.refine.refiner import Refiner

__all__ = ["InputProgressiveFusion", "ModalityDistiller", "ProgressiveFusion", "Refiner"]
