"""Transformer blocks shared by MulT, UCRN and the early-fusion transformer.

:class:`CrossmodalTransformer` (MulT's layer, pre-LayerNorm)::

    x <- sqrt(d) * x + PE          (sinusoidal positions; dropout ``embed_dropout``)
    for each layer:
        x <- x + Drop(MHA(LN(x), LN(y), LN(y)))      y = source sequence (x itself for self-attention)
        x <- x + Drop(W2 Drop(ReLU(W1 LN(x))))       (4x feed-forward)
    return LN(x)

``causal=True`` adds MulT's "future" mask ``triu(-inf, 1 + |Lk - Lq|)``; it is
off by default here (the reference turns it on by default, which makes a
bidirectional utterance model attend only to the past).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mmrefine.core.errors import ConfigError
from mmrefine.core.layers import sinusoidal_positions


class CrossmodalLayer(nn.Module):
    def __init__(self, d: int, heads: int, attn_dropout: float, relu_dropout: float, res_dropout: float, cross: bool) -> None:
        super().__init__()
        self.norm_q, self.norm_ff = nn.LayerNorm(d), nn.LayerNorm(d)
        self.norm_kv = nn.LayerNorm(d) if cross else None
        self.attn = nn.MultiheadAttention(d, heads, dropout=attn_dropout, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(d, 4 * d), nn.ReLU(), nn.Dropout(relu_dropout), nn.Linear(4 * d, d))
        self.drop = nn.Dropout(res_dropout)

    def forward(self, x: Tensor, y: Tensor | None, attn_mask: Tensor | None, key_padding: Tensor | None) -> Tensor:
        q = self.norm_q(x)
        if (y is None) != (self.norm_kv is None):
            raise ConfigError("a crossmodal layer needs a source sequence; a self-attention layer takes none")
        kv = q if y is None else self.norm_kv(y)
        h, _ = self.attn(q, kv, kv, attn_mask=attn_mask, key_padding_mask=key_padding, need_weights=False)
        x = x + self.drop(h)
        return x + self.drop(self.ff(self.norm_ff(x)))


class CrossmodalTransformer(nn.Module):
    """See module docstring. ``cross=True``: ``forward(x, y)`` attends from x to
    the source y; ``cross=False``: self-attention, ``forward(x)``.
    ``key_padding`` is ``True`` at source positions to ignore."""

    def __init__(
        self,
        d: int,
        heads: int,
        layers: int,
        attn_dropout: float = 0.1,
        relu_dropout: float = 0.1,
        res_dropout: float = 0.1,
        embed_dropout: float = 0.25,
        causal: bool = False,
        cross: bool = True,
    ) -> None:
        super().__init__()
        self.d = d
        self.layers = nn.ModuleList(CrossmodalLayer(d, heads, attn_dropout, relu_dropout, res_dropout, cross) for _ in range(layers))
        self.norm = nn.LayerNorm(d)
        self.embed_dropout = nn.Dropout(embed_dropout)
        self.causal = causal

    def _embed(self, x: Tensor) -> Tensor:
        return math.sqrt(self.d) * x + sinusoidal_positions(x.shape[1], self.d).to(x)

    def forward(self, x: Tensor, y: Tensor | None = None, key_padding: Tensor | None = None) -> Tensor:
        x = self.embed_dropout(self._embed(x))
        if y is not None:
            y = self.embed_dropout(self._embed(y))
        mask = None
        if self.causal:
            lq, lk = x.shape[1], (y if y is not None else x).shape[1]
            mask = torch.triu(torch.full((lq, lk), float("-inf"), device=x.device), 1 + abs(lk - lq))
        for layer in self.layers:
            x = layer(x, y, mask, key_padding)
        return self.norm(x)


def as_sequence(x: Tensor) -> Tensor:
    """``(B, d)`` -> ``(B, 1, d)``; sequences pass through."""
    return x[:, None, :] if x.dim() == 2 else x
