"""Presence masks: one check at a model's boundary, absent values removed by selection.

A mask maps each modality to a boolean ``(B,)`` tensor, ``True`` where the
modality is present for that sample. Absent values are replaced with
``torch.where`` rather than multiplied by the mask, so a NaN or Inf stored in an
absent sample never reaches arithmetic (``NaN * 0`` is NaN).
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import torch
from torch import Tensor

from mmrefine.core.errors import BatchError


def full_mask(inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A mask with every modality present."""
    return {m: torch.ones(x.shape[0], dtype=torch.bool, device=x.device) for m, x in inputs.items()}


def zero_absent(x: Tensor, keep: Tensor) -> Tensor:
    """``x`` with the samples where ``keep`` (bool, shape ``(B,)``) is False set to zero,
    by selection: whatever an absent sample held (NaN included) is discarded. ``x`` itself
    when ``keep`` is a CPU tensor with every sample present (the usual training batch: the
    check costs a fraction of the copy, and waits on no device)."""
    if keep.device.type == "cpu" and bool(keep.all()):
        return x
    return torch.where(keep.reshape(-1, *([1] * (x.dim() - 1))), x, x.new_zeros(()))


def format_shape(shape: Sequence[int | None]) -> str:
    """``(3, *)`` for a per-sample shape with ``None`` meaning any length."""
    return "(" + ", ".join("*" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def key_mismatch(expected: Sequence[str], given: Iterable[str]) -> tuple[list[str], list[str]]:
    """``(unknown, missing)``: keys of ``given`` not expected, expected keys not given."""
    given = list(given)
    return [k for k in given if k not in expected], [m for m in expected if m not in given]


def check_modalities(
    owner: str,
    modalities: Sequence[str],
    inputs: Mapping[str, Tensor],
    mask: Mapping[str, Tensor] | None = None,
    shapes: Mapping[str, Sequence[int | None]] | None = None,
    dtype: torch.dtype | None = None,
) -> dict[str, Tensor]:
    """The one boundary check of a model's ``forward(inputs, mask)``.

    Raises :class:`BatchError` naming the modality unless ``inputs`` holds
    exactly ``modalities``, every input is a tensor with the same batch size B
    (of the per-sample shape in ``shapes`` and of ``dtype``, where given), and
    ``mask`` (when given) has the same keys, each a boolean ``(B,)`` tensor.
    Returns the mask as a dict (all present when ``mask`` is None).

    Args:
        owner: the model's name, used in messages.
        modalities: the modalities the model expects.
        inputs: ``{modality: (B, ...) tensor}``.
        mask: ``{modality: (B,) bool tensor}`` or None.
        shapes: ``{modality: per-sample shape}`` the model expects (``None`` in a
            shape: any length); modalities not named are not shape-checked.
        dtype: the floating dtype of the model's parameters.
    """
    unknown, missing = key_mismatch(modalities, inputs)
    if unknown or missing:
        raise BatchError(
            f"{owner} expects modalities {list(modalities)}; unknown {unknown}, missing {missing} "
            "(to mark a modality absent, pass zeros with mask False)"
        )
    sizes = {}
    for m in modalities:
        x = inputs[m]
        if not isinstance(x, Tensor):
            raise BatchError(f"{owner}: modality '{m}' must be a Tensor, got {type(x).__name__}")
        if x.dim() == 0:
            raise BatchError(f"{owner}: modality '{m}' must have a batch dimension, got a scalar")
        if dtype is not None and x.dtype != dtype:
            raise BatchError(f"{owner}: modality '{m}' is {x.dtype}, the model computes in {dtype}; convert it (e.g. x.to({dtype}))")
        expected = None if shapes is None else shapes.get(m)
        if expected is not None:
            got = tuple(x.shape[1:])
            if len(got) != len(expected) or any(e is not None and e != g for e, g in zip(expected, got)):
                raise BatchError(f"{owner}: modality '{m}' must be shaped (B, *{format_shape(expected)}), got per-sample shape {got}")
        sizes[m] = int(x.shape[0])
    if len(set(sizes.values())) > 1:
        raise BatchError(f"{owner}: modalities disagree on the batch size: {sizes}")
    b = next(iter(sizes.values()))
    if mask is None:
        return full_mask(inputs)
    unknown, missing = key_mismatch(modalities, mask)
    if unknown or missing:
        raise BatchError(f"{owner}: the mask must have the modalities {list(modalities)}; unknown {unknown}, missing {missing}")
    for m in modalities:
        k = mask[m]
        if not isinstance(k, Tensor) or k.dtype != torch.bool or tuple(k.shape) != (b,):
            got = f"{k.dtype} {tuple(k.shape)}" if isinstance(k, Tensor) else type(k).__name__
            raise BatchError(f"{owner}: mask of '{m}' must be a bool tensor of shape ({b},), got {got}")
    return dict(mask)
