"""Unimodal encoders ``G_m``; build them by name with ``ENCODERS.build``."""

from mmrefine.core.layers import mlp
from mmrefine.encoders.categorical import CategoricalEncoder
from mmrefine.encoders.conv import LeNetEncoder
from mmrefine.encoders.minilm import MiniLMTopEncoder
from mmrefine.encoders.mlp import IdentityEncoder, MLPEncoder
from mmrefine.encoders.registry import ENCODERS
from mmrefine.encoders.sequence import Conv1dEncoder, GRUEncoder, TransformerSequenceEncoder

__all__ = [
    "ENCODERS", "CategoricalEncoder", "Conv1dEncoder", "GRUEncoder", "IdentityEncoder", "LeNetEncoder", "MiniLMTopEncoder", "MLPEncoder",
    "TransformerSequenceEncoder", "mlp",
]
