"""Fusion modules ``A``: ``dict[str, Tensor]`` in, NamedTuple (``fused`` first) out."""

from mmrefine.fusion.attention import AttentionFusion, AttentionOutput
from mmrefine.fusion.base import FUSIONS, FusionModule, masked_softmax
from mmrefine.fusion.concat import ConcatFusion, ConcatOutput
from mmrefine.fusion.gmu import GMUFusion, GMUOutput
from mmrefine.fusion.sums import LinearSumFusion, LinearSumOutput, WeightedSumFusion, WeightedSumOutput
from mmrefine.fusion.tabular import (
    ConcatMLP,
    GatingCombiner,
    MLPCategoricalConcat,
    MLPsConcat,
    TabularAttention,
    TabularOutput,
    TextOnlyCombiner,
    WeightedFeatureSum,
)
from mmrefine.fusion.tensor import LowRankOutput, LowRankTensorFusion, TensorFusion, TensorFusionOutput

__all__ = [
    "FUSIONS", "AttentionFusion", "AttentionOutput", "ConcatFusion", "ConcatOutput", "FusionModule",
    "GMUFusion", "GMUOutput", "LinearSumFusion", "LinearSumOutput", "LowRankOutput", "LowRankTensorFusion",
    "TensorFusion", "TensorFusionOutput", "ConcatMLP", "GatingCombiner", "MLPCategoricalConcat", "MLPsConcat",
    "TabularAttention", "TabularOutput", "TextOnlyCombiner", "WeightedFeatureSum", "WeightedSumFusion", "WeightedSumOutput", "masked_softmax",
]
