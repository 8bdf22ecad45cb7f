"""Model-agnostic wrappers that refine fused representations."""

from mmrefine.refine.refiner import Refiner

__all__ = ["Refiner"]
