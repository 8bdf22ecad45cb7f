"""Complete architectures: FusionModel (encoders + fusion + head), UCRN, MulT,
the early-fusion transformer, the multimodal autoencoder MMAE and MMBT on MiniLM (build by name with ``ARCHITECTURES``)."""

from mmrefine.models.early_fusion import POOLINGS, EarlyFusionTransformer, pool_span
from mmrefine.models.fusion_model import FusionModel, MLPHead, ModelOutput
from mmrefine.models.mmae import MMAE, MMAEInternals
from mmrefine.models.mmbt import MMBT, MMBTInternals
from mmrefine.models.mult import MulT
from mmrefine.models.registry import ARCHITECTURES
from mmrefine.models.ucrn import UCRN, js_divergence

__all__ = [
    "ARCHITECTURES", "POOLINGS", "EarlyFusionTransformer", "FusionModel", "MLPHead", "MMAE", "MMAEInternals", "MMBT",
    "MMBTInternals", "ModelOutput", "MulT", "UCRN",
    "js_divergence", "pool_span",
]
