"""Learned embeddings for categorical columns."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from mmrefine.core.errors import BatchError, ConfigError
from mmrefine.encoders.registry import ENCODERS


@ENCODERS.register("categorical")
class CategoricalEncoder(nn.Module):
    """``F = [E_1(x_1); ...; E_K(x_K)]`` (then ``ReLU(W F)`` when ``out_dim`` is
    set): one embedding table per column. Inputs are category indices stored as
    floats (every modality is a float tensor); index 0 is reserved for a
    missing or unseen category.

    Args:
        input_shape: ``(K,)``, one index per column (set by the builder from the data).
        cardinalities: number of indices of each column, index 0 included.
        dim: embedding width per column.
        out_dim: width of a projection after the embeddings (None: their concatenation).
    """

    def __init__(self, input_shape: Sequence[int], cardinalities: Sequence[int], dim: int = 8, out_dim: int | None = None) -> None:
        super().__init__()
        self.input_shape: tuple[int | None, ...] = tuple(input_shape)
        if len(self.input_shape) != 1 or self.input_shape[0] != len(cardinalities):
            raise ConfigError(f"categorical encoder: input shape {self.input_shape} does not match {len(cardinalities)} cardinalities")
        if any(c < 1 for c in cardinalities):
            raise ConfigError(f"categorical encoder: cardinalities must be >= 1, got {list(cardinalities)}")
        self.register_buffer("cardinalities", torch.tensor(list(cardinalities)), persistent=False)
        self.tables = nn.ModuleList([nn.Embedding(c, dim) for c in cardinalities])
        width = dim * len(cardinalities)
        self.proj = nn.Sequential(nn.Linear(width, out_dim), nn.ReLU()) if out_dim is not None else nn.Identity()
        self.out_dim = out_dim if out_dim is not None else width

    def forward(self, x: Tensor) -> Tensor:
        idx = x.long()
        if (idx != x).any() or (idx < 0).any() or (idx >= self.cardinalities).any():
            raise BatchError(f"categorical encoder: indices must be integers in [0, cardinality); cardinalities {self.cardinalities.tolist()}")
        return self.proj(torch.cat([t(idx[:, k]) for k, t in enumerate(self.tables)], 1))
