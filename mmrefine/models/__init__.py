"""Complete architectures."""

from mmrefine.models.fusion_model import FusionModel, MLPHead, ModelOutput

__all__ = ["FusionModel", "MLPHead", "ModelOutput"]
