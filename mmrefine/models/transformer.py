"""Transformer blocks shared by MulT, UCRN and the early-fusion transformer.

:class:`CrossmodalTransformer` (MulT's layer, pre-LayerNorm)::

    x <- sqrt(d) * x + PE          (sinusoidal positions; dropout ``embed_dropout``)
    for each layer:
        x <- x + Drop(MHA(LN(x), LN(y), LN(y)))      y = source sequence (x itself for self-attention)
        x <- x + Drop(W2 Drop(ReLU(W1 LN(x))))       (4x feed-forward)
    return LN(x)

``fast_dropout=True`` draws every dropout mask with :func:`mmrefine.core.dropout.fast_dropout`
(the same model and parameters; 1.6-1.7x faster training steps on CPU, ``docs/performance.md``).

``causal=True`` adds MulT's "future" mask ``triu(-inf, 1 + |Lk - Lq|)``; it is
off by default here (the reference turns it on by default, which makes a
bidirectional utterance model attend only to the past).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mmrefine.core.dropout import FastDropout, dropout_layer, multihead_attention, relu_dropout
from mmrefine.core.errors import ConfigError
from mmrefine.core.layers import sinusoidal_positions


class CrossmodalLayer(nn.Module):
    def __init__(self, d: int, heads: int, attn_dropout: float, relu_dropout: float, res_dropout: float, cross: bool,
                 fast_dropout: bool = False) -> None:
        super().__init__()
        self.fast_dropout = fast_dropout
        self.norm_q, self.norm_ff = nn.LayerNorm(d), nn.LayerNorm(d)
        self.norm_kv = nn.LayerNorm(d) if cross else None
        self.attn = nn.MultiheadAttention(d, heads, dropout=attn_dropout, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(d, 4 * d), nn.ReLU(), dropout_layer(relu_dropout, fast_dropout), nn.Linear(4 * d, d))
        self.drop = dropout_layer(res_dropout, fast_dropout)

    def forward(self, x: Tensor, y: Tensor | None, attn_mask: Tensor | None, key_padding: Tensor | None) -> Tensor:
        q = self.norm_q(x)
        if (y is None) != (self.norm_kv is None):
            raise ConfigError("a crossmodal layer needs a source sequence; a self-attention layer takes none")
        kv = q if y is None else self.norm_kv(y)
        if self.fast_dropout:
            h = multihead_attention(self.attn, q, kv, attn_mask, key_padding)
        else:
            h, _ = self.attn(q, kv, kv, attn_mask=attn_mask, key_padding_mask=key_padding, need_weights=False)
        x = x + self.drop(h)
        if self.fast_dropout:  # ReLU and its dropout in one function (mmrefine.core.dropout.relu_dropout)
            w1, _, drop, w2 = self.ff
            return x + self.drop(w2(relu_dropout(w1(self.norm_ff(x)), drop.p, drop.training)))
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
        fast_dropout: bool = False,
    ) -> None:
        super().__init__()
        self.d = d
        self.layers = nn.ModuleList(
            CrossmodalLayer(d, heads, attn_dropout, relu_dropout, res_dropout, cross, fast_dropout) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(d)
        self.embed_dropout = dropout_layer(embed_dropout, fast_dropout)
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


class EncoderLayer(nn.TransformerEncoderLayer):
    """``nn.TransformerEncoderLayer`` (pre-LayerNorm, ReLU, batch first; the same parameters and
    state dict) that, with ``fast_dropout=True``, runs ``x + Drop(MHA(LN(x))); x + Drop(W2
    Drop(ReLU(W1 LN(x))))`` with :mod:`mmrefine.core.dropout`'s masks, attention and ReLU with its dropout."""

    def __init__(self, d: int, heads: int, ff: int, dropout: float, fast_dropout: bool = False) -> None:
        super().__init__(d, heads, ff, dropout, batch_first=True, norm_first=True)
        self.fast_dropout = fast_dropout
        if fast_dropout:
            self.dropout, self.dropout1, self.dropout2 = (FastDropout(dropout) for _ in range(3))

    def forward(self, src: Tensor, src_mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None,
                is_causal: bool = False) -> Tensor:
        if not self.fast_dropout:
            return super().forward(src, src_mask, src_key_padding_mask, is_causal)
        h = self.norm1(src)
        x = src + self.dropout1(multihead_attention(self.self_attn, h, h, src_mask, src_key_padding_mask))
        return x + self.dropout2(self.linear2(relu_dropout(self.linear1(self.norm2(x)), self.dropout.p, self.dropout.training)))


def as_sequence(x: Tensor) -> Tensor:
    """``(B, d)`` -> ``(B, 1, d)``; sequences pass through."""
    return x[:, None, :] if x.dim() == 2 else x
