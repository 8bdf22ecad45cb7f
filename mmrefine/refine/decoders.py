"""All per-modality decoders ``D_m`` evaluated as one batched computation.

    D_m(z) = W2_m ReLU(W1_m z + b1_m) + b2_m,    m = 1..M

The first layers of all modalities are one ``Linear(z_dim, M * hidden)``; the
second layers are one batched matmul with ``W2`` stacked as ``(M, hidden,
d_max)``, where columns beyond modality m's width ``d_m`` are zero and stay
zero (their outputs are masked, so they receive no gradient). A Refiner's
training cost is then a handful of kernels whatever M is, instead of a Python
loop of 2M small layers.
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import Tensor, nn


class GroupedDecoders(nn.Module):
    """See module docstring. ``forward(z)`` returns ``(M, B, d_max)``, zero-padded."""

    def __init__(self, in_dim: int, hidden: int, out_dims: Mapping[str, int]) -> None:
        super().__init__()
        self.modalities = list(out_dims)
        m, d_max = len(out_dims), max(out_dims.values())
        self.hidden = hidden
        self.first = nn.Linear(in_dim, m * hidden)
        bound = 1 / math.sqrt(hidden)  # nn.Linear's default initialisation, per modality
        cols = torch.zeros(m, 1, d_max)
        for i, d in enumerate(out_dims.values()):
            cols[i, 0, :d] = 1.0
        self.weight = nn.Parameter(torch.empty(m, hidden, d_max).uniform_(-bound, bound) * cols)
        self.bias = nn.Parameter(torch.empty(m, 1, d_max).uniform_(-bound, bound) * cols)
        self.register_buffer("columns", cols, persistent=False)
        self.register_buffer("dims", torch.tensor(list(out_dims.values())), persistent=False)

    def forward(self, z: Tensor) -> Tensor:
        h = torch.relu(self.first(z)).view(z.shape[0], len(self.modalities), self.hidden).transpose(0, 1)
        return torch.baddbmm(self.bias, h, self.weight) * self.columns

    def split(self, stacked: Tensor) -> dict[str, Tensor]:
        """``(M, B, d_max)`` -> ``{m: (B, d_m)}``."""
        return {m: stacked[i, :, : int(d)] for i, (m, d) in enumerate(zip(self.modalities, self.dims.tolist()))}
