"""Layers shared by encoders, fusion modules and architectures."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn


def mlp(dims: Sequence[int], dropout: float = 0.0, norm: bool = False, final_activation: bool = False) -> nn.Sequential:
    """``Linear -> [LayerNorm] -> ReLU -> [Dropout]`` between consecutive ``dims``.

    Args:
        dims: layer widths, input first (``[in, hidden..., out]``).
        dropout: dropout probability after each activation (0 adds no layer).
        norm: insert a LayerNorm before each activation.
        final_activation: activate the last layer too.
    """
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


def sinusoidal_positions(length: int, dim: int) -> Tensor:
    """``PE[t, 2i] = sin(t / 10000^(2i/d))``, ``PE[t, 2i+1] = cos(...)``, shape ``(length, dim)``."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return pe
