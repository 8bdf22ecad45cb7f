"""Feed-forward encoders for vector (or flattened) inputs."""

from __future__ import annotations

import math
from typing import Sequence

from torch import Tensor, nn

from mmrefine.encoders.registry import ENCODERS


def mlp(dims: Sequence[int], dropout: float = 0.0, norm: bool = False, final_activation: bool = False) -> nn.Sequential:
    """``Linear -> [LayerNorm] -> ReLU -> Dropout`` between consecutive ``dims``."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2 or final_activation:
            if norm:
                layers.append(nn.LayerNorm(b))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


@ENCODERS.register("mlp")
class MLPEncoder(nn.Module):
    """``F = MLP(flatten(x))``: hidden layers with ReLU (optional LayerNorm, dropout),
    the last layer activated too so features are non-negative like a CNN's."""

    def __init__(
        self,
        input_shape: Sequence[int],
        out_dim: int = 64,
        hidden: Sequence[int] = (128,),
        dropout: float = 0.0,
        norm: bool = False,
        final_activation: bool = True,
    ) -> None:
        super().__init__()
        in_dim = math.prod(input_shape)
        self.net = mlp([in_dim, *hidden, out_dim], dropout, norm, final_activation)
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))


@ENCODERS.register("identity")
class IdentityEncoder(nn.Module):
    """``F = flatten(x)``: for precomputed features."""

    def __init__(self, input_shape: Sequence[int]) -> None:
        super().__init__()
        self.out_dim = math.prod(input_shape)

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(1)
