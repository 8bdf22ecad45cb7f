"""Model-agnostic wrappers that refine fused representations."""

from mmrefine.refine.progressive import ProgressiveFusion
from mmrefine.refine.refiner import Refiner

__all__ = ["ProgressiveFusion", "Refiner"]
