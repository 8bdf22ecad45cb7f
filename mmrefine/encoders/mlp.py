"""Feed-forward encoders for vector (or flattened) inputs."""

from __future__ import annotations

import math
from typing import Sequence

from torch import Tensor, nn

from mmrefine.core.layers import mlp
from mmrefine.encoders.registry import ENCODERS


@ENCODERS.register("mlp")
class MLPEncoder(nn.Module):
    """``F = MLP(flatten(x))``: hidden layers with ReLU (optional LayerNorm, dropout),
    the last layer activated too so features are non-negative like a CNN's.

    Args:
        input_shape: per-sample input shape (set by the builder from the data).
        out_dim: width of ``F``.
        hidden: hidden layer widths.
        dropout: dropout after each activation.
        norm: LayerNorm before each activation.
        final_activation: apply ReLU (and norm/dropout) after the last layer too.
    """

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
        self.input_shape: tuple[int | None, ...] = tuple(input_shape)
        in_dim = math.prod(input_shape)
        self.net = mlp([in_dim, *hidden, out_dim], dropout, norm, final_activation)
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))


@ENCODERS.register("identity")
class IdentityEncoder(nn.Module):
    """``F = flatten(x)``: for precomputed features.

    Args:
        input_shape: per-sample input shape (set by the builder from the data).
    """

    def __init__(self, input_shape: Sequence[int]) -> None:
        super().__init__()
        self.input_shape: tuple[int | None, ...] = tuple(input_shape)
        self.out_dim = math.prod(input_shape)

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(1)
