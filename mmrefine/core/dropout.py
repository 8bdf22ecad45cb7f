"""Dropout with a cheap mask on CPU, and multi-head attention that uses it.

``fast_dropout(x, p) = x * keep / (1 - p')``, where ``keep = u >= -2^15 + round(p * 2^16)``
for ``u`` 16 random bits per element (four elements per 64-bit draw of torch's default
generator, so ``torch.manual_seed`` makes it repeatable) and ``p' = round(p * 2^16) / 2^16``
(within 7.7e-6 of ``p``), so that ``E[out] = x`` exactly. Backward: ``grad * keep / (1 - p')``.
:func:`relu_dropout` is ``fast_dropout(relu(x), p)`` in one function.

torch's CPU dropout samples a Bernoulli variable per element, 5.6 times the cost of drawing
the bits (a dropout forward and backward costs 2.8 times as much; ``docs/performance.md``); in
a small transformer's training step the masks were nearly half the time. Off the CPU, :func:`fast_dropout` is ``F.dropout``. It draws from
the generator differently from ``F.dropout``, so a run with it is a different (equally
distributed) draw of the same model, not the same numbers.

:func:`multihead_attention` is ``nn.MultiheadAttention``'s computation with that module's own
parameters (a model's state dict does not change)::

    Q, K, V = x W_q^T + b_q, y W_k^T + b_k, y W_v^T + b_v        (split into h heads of d/h)
    A = softmax(Q K^T / sqrt(d/h) + M)                             M: attn_mask and key padding (-inf)
    out = concat_heads(Drop(A) V) W_o^T + b_o

With no dropout on ``A``, or off the CPU, it is one ``scaled_dot_product_attention`` call; with
dropout (training) on the CPU, ``A`` is formed explicitly and dropped with :func:`fast_dropout`'s mask
(torch's own path would fall back to the same explicit form with a Bernoulli mask), in one
autograd function whose backward needs no softmax backward (``_DroppedAttention``). A query whose keys are all
masked gets zero attention, as in torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

_BITS = 16
_LEVELS = 1 << _BITS


def _keep(x: Tensor, p: float) -> tuple[Tensor, float]:
    """``keep`` (0 or 1) in ``x``'s dtype and shape (16 random bits per element, module docstring), and ``1 / (1 - p')``."""
    n = x.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(torch.iinfo(torch.int64).min, None)
    dropped = round(p * _LEVELS)
    keep = torch.ge(words.view(torch.int16)[:n].view(x.shape), dropped - (_LEVELS >> 1), out=torch.empty_like(x))
    return keep, 1.0 / (1.0 - dropped / _LEVELS)


def _scaled_keep(x: Tensor, p: float) -> Tensor:
    """``keep / (1 - p')`` in ``x``'s dtype and shape."""
    keep, scale = _keep(x, p)
    return keep.mul_(scale)


class _FastDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, p: float) -> Tensor:  # type: ignore[override]
        keep = _scaled_keep(x, p)
        ctx.save_for_backward(keep)
        return x * keep

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (keep,) = ctx.saved_tensors
        return grad * keep, None


def fast_dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """See module docstring; ``F.dropout``'s signature (no ``inplace``)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or not x.is_floating_point():
        return F.dropout(x, p, True)
    return _FastDropout.apply(x, p)


class _ReluDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, p: float) -> Tensor:  # type: ignore[override]
        keep, c = _keep(x, p)
        out = x.clamp_min(0).mul_(keep).mul_(c)
        ctx.save_for_backward(out)
        ctx.c = c
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (out,) = ctx.saved_tensors
        return torch.ops.aten.threshold_backward(grad, out, 0).mul_(ctx.c), None


def relu_dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """``fast_dropout(relu(x), p)`` (a feed-forward block's middle): the same numbers from the
    same draws in fewer passes. It keeps only its output for backward (which the next linear
    layer keeps anyway): the gradient passes where that output is positive, times ``1 / (1 - p')``."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0.0 or x.device.type != "cpu" or not x.is_floating_point():
        return fast_dropout(F.relu(x), p, training)
    return _ReluDropout.apply(x, p)


class FastDropout(nn.Dropout):
    """``nn.Dropout`` drawing its mask with :func:`fast_dropout` (same ``p``, no parameters)."""

    def forward(self, x: Tensor) -> Tensor:
        return fast_dropout(x, self.p, self.training)


def dropout_layer(p: float, fast: bool) -> nn.Dropout:
    """:class:`FastDropout` when ``fast``, else ``nn.Dropout`` (the models' ``fast_dropout`` switch)."""
    return FastDropout(p) if fast else nn.Dropout(p)


def composed_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, p: float) -> Tensor:
    """``fast_dropout(softmax(Q K^T / sqrt(d_h) + M), p) V`` as autograd composes it: twice
    differentiable, with a gradient for a learned ``M``; :class:`_DroppedAttention` computes the same in fewer passes."""
    scores = (q * (1.0 / math.sqrt(q.shape[-1]))) @ k.transpose(-1, -2)
    return fast_dropout((scores if mask is None else scores + mask).softmax(-1), p) @ v


_TWICE = ContextVar("mmrefine_twice_differentiable", default=False)


@contextmanager
def twice_differentiable() -> Iterator[None]:
    """Attention computed inside this block can be differentiated twice (``create_graph=True``
    through it, as a meta-gradient's look-ahead needs): it takes autograd's composed form,
    not ``_DroppedAttention``, whose backward is once differentiable."""
    token = _TWICE.set(True)
    try:
        yield
    finally:
        _TWICE.reset(token)


class _DroppedAttention(torch.autograd.Function):
    """``O = c (softmax(Q K^T / sqrt(d_h) + M) * keep) V`` for ``(..., L, d_h)`` heads, ``c = 1 / (1 - p')``.

    The same numbers as ``fast_dropout(softmax(...), p) @ V`` from the same generator state (the
    scale moves to the small output), in fewer passes over the ``L x L`` matrices, which are what a
    small transformer's step spends its time on: the mask is drawn as 0/1 and multiplied in its own
    buffer, and the backward pass needs no softmax backward (FlashAttention's identity)::

        G = c dO V^T,   dV = c (A * keep)^T dO,   D = rowsum(dO * O)
        dS = A * (keep * G - D) = (A * keep) * G - A * D,   dQ = dS K / sqrt(d_h),   dK = dS^T Q / sqrt(d_h)

    It keeps two ``L x L`` tensors for backward (``A`` and ``A * keep``) where the composed form
    keeps three. ``M`` is a constant (no gradient). Its backward is once differentiable: a forward
    whose gradients will be differentiated (a meta-gradient's look-ahead) runs inside
    :func:`twice_differentiable`, as :class:`~mmrefine.refine.ModalityDistiller`'s ``meta``
    weighting does (without it, that update missed the attention's terms, tested)."""

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, p: float) -> Tensor:  # type: ignore[override]
        scale = 1.0 / math.sqrt(q.shape[-1])
        qs = q * scale
        scores = qs @ k.transpose(-1, -2)
        if mask is not None:
            scores.add_(mask)
        a = torch.softmax(scores, -1)
        del scores
        keep, c = _keep(a, p)
        dropped = keep.mul_(a)
        out = (dropped @ v).mul_(c)
        ctx.save_for_backward(qs, k, v, a, dropped, out)
        ctx.c, ctx.scale = c, scale
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, Tensor, None, None]:  # type: ignore[override]
        qs, k, v, a, dropped, out = ctx.saved_tensors
        gc = grad * ctx.c
        ds = (gc @ v.transpose(-1, -2)).mul_(dropped)
        ds.addcmul_(a, (grad * out).sum(-1, keepdim=True), value=-1.0)
        return (ds @ k).mul_(ctx.scale), ds.transpose(-1, -2) @ qs, dropped.transpose(-1, -2) @ gc, None, None


def _masks_nothing(mask: Tensor) -> bool:
    """A constant CPU mask with no ``True`` (boolean) or nonzero (additive) entry: adding it
    would cost a pass over every score and change none (checked on the CPU only, where it
    costs no synchronisation)."""
    return mask.device.type == "cpu" and not mask.requires_grad and not bool(mask.any())


def _score_mask(attn_mask: Tensor | None, key_padding: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    """An additive ``(B or 1, 1, Lq or 1, Lk)`` mask from an ``(Lq, Lk)`` mask and a ``(B, Lk)``
    key padding mask, each additive (float) or boolean (``True``: ignore), as
    ``nn.MultiheadAttention`` reads them; ``None`` when neither masks anything (a batch with
    every token present)."""
    attn_mask = None if attn_mask is None or _masks_nothing(attn_mask) else attn_mask
    key_padding = None if key_padding is None or _masks_nothing(key_padding) else key_padding
    mask = None
    if attn_mask is not None:
        mask = attn_mask.to(dtype) if attn_mask.is_floating_point() else torch.zeros_like(attn_mask, dtype=dtype).masked_fill(attn_mask, float("-inf"))
        mask = mask[None, None]
    if key_padding is not None:
        pad = (key_padding.to(dtype) if key_padding.is_floating_point() else
               torch.zeros(key_padding.shape, dtype=dtype, device=key_padding.device).masked_fill(key_padding, float("-inf")))[:, None, None]
        mask = pad if mask is None else mask + pad
    return mask


def multihead_attention(mha: nn.MultiheadAttention, x: Tensor, y: Tensor, attn_mask: Tensor | None = None,
                        key_padding: Tensor | None = None, dropout: bool = True) -> Tensor:
    """See module docstring: ``mha``'s attention from ``x (B, Lq, d)`` to ``y (B, Lk, d)``
    (``y is x`` for self-attention: one packed projection), batch first. ``dropout``: drop
    attention weights with ``mha.dropout`` when ``mha`` is training."""
    if not mha.batch_first or not mha._qkv_same_embed_dim:
        raise ValueError("multihead_attention needs a batch_first nn.MultiheadAttention with equal q, k, v widths")
    b, lq, d = x.shape
    lk, h = y.shape[1], mha.num_heads
    w, bias = mha.in_proj_weight, mha.in_proj_bias
    if y is x:
        q, k, v = F.linear(x, w, bias).view(b, lq, 3, h, d // h).permute(2, 0, 3, 1, 4).unbind(0)
    else:
        q = F.linear(x, w[:d], None if bias is None else bias[:d]).view(b, lq, h, d // h).transpose(1, 2)
        k, v = F.linear(y, w[d:], None if bias is None else bias[d:]).view(b, lk, 2, h, d // h).permute(2, 0, 3, 1, 4).unbind(0)
    mask = _score_mask(attn_mask, key_padding, x.dtype)
    p = mha.dropout if dropout and mha.training else 0.0
    if p == 0 or x.device.type != "cpu":  # off the CPU, torch's kernels drop attention weights themselves
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
    else:
        dead = None
        if mask is not None:
            # a query whose keys are all masked gets zero attention (as torch's _safe_softmax):
            # found on the small mask, unmasked for a finite softmax, its output zeroed below
            dead = torch.isneginf(mask).all(-1, keepdim=True)
            if dead.any():
                mask = mask.masked_fill(dead, 0.0)
            else:
                dead = None
        if (mask is not None and mask.requires_grad) or _TWICE.get():  # a learned mask, or a second derivative: autograd's composed form
            out = composed_attention(q, k, v, mask, p)
        else:
            out = _DroppedAttention.apply(q, k, v, mask, p)
        if dead is not None:
            out = out.masked_fill(dead, 0.0)
    return mha.out_proj(out.transpose(1, 2).reshape(b, lq, d))
