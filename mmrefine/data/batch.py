"""Multimodal batches, their schema, validation and collation.

A batch holds, for B samples:

* ``inputs``: ``dict[str, Tensor]``, one tensor per modality, shape ``(B, *shape_m)``;
* ``mask``: ``dict[str, BoolTensor]`` of shape ``(B,)``, ``True`` where the
  modality is present. Absent entries of ``inputs`` are zero;
* ``labels``: ``(B,)`` class indices, ``(B, C)`` multi-hot or ``(B, D)`` targets,
  or ``None`` for unlabelled data.

Validation (:meth:`BatchSchema.validate`) raises :class:`~mmrefine.core.errors.BatchError`
naming the offending modality for: an unknown or missing modality, a wrong
per-sample shape or a non-floating dtype, NaN or Inf among present samples, a
mask of the wrong shape or dtype, and labels whose length differs from B. A batch
with ``finite=True`` (set by :class:`~mmrefine.data.dataset.TensorMultimodalDataset`,
which scans its tensors for NaN and Inf once rather than every batch) skips the value
scan; the structural checks run on every batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

from mmrefine.core.errors import BatchError
from mmrefine.core.mask import format_shape, full_mask, key_mismatch, zero_absent  # noqa: F401  (full_mask, zero_absent re-exported)


@dataclass
class MultimodalBatch:
    """B samples of several modalities (see module docstring)."""

    inputs: dict[str, Tensor]
    mask: dict[str, Tensor]
    labels: Tensor | None = None
    finite: bool = False  # values known to hold no NaN / Inf (checked once for the dataset they come from)

    def __post_init__(self) -> None:
        if not self.inputs:
            raise BatchError("a batch needs at least one modality")
        sizes = {m: int(x.shape[0]) for m, x in self.inputs.items()}
        if len(set(sizes.values())) != 1:
            raise BatchError(f"modalities disagree on the batch size: {sizes}")

    @property
    def size(self) -> int:
        return int(next(iter(self.inputs.values())).shape[0])

    @property
    def modalities(self) -> list[str]:
        return list(self.inputs)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "MultimodalBatch":
        """The batch on ``device`` (this batch itself if every tensor is already there);
        ``finite`` carries over, since moving values does not change them."""
        device = torch.device(device)
        tensors = [*self.inputs.values(), *self.mask.values(), *([] if self.labels is None else [self.labels])]
        if all(t.device == device for t in tensors):
            return self
        return MultimodalBatch(
            {m: x.to(device, non_blocking=non_blocking) for m, x in self.inputs.items()},
            {m: k.to(device, non_blocking=non_blocking) for m, k in self.mask.items()},
            None if self.labels is None else self.labels.to(device, non_blocking=non_blocking),
            finite=self.finite,
        )


@dataclass(frozen=True)
class ModalitySpec:
    """Per-sample shape of one modality. ``None`` in ``shape`` means "any length"."""

    shape: tuple[int | None, ...]

    def matches(self, shape: Sequence[int]) -> bool:
        return len(shape) == len(self.shape) and all(
            s is None or s == d for s, d in zip(self.shape, shape)
        )


@dataclass(frozen=True)
class BatchSchema:
    """The modalities a model expects and their per-sample shapes."""

    modalities: Mapping[str, ModalitySpec] = field(default_factory=dict)

    @classmethod
    def from_shapes(cls, shapes: Mapping[str, Sequence[int | None]]) -> "BatchSchema":
        return cls({m: ModalitySpec(tuple(s)) for m, s in shapes.items()})

    @property
    def names(self) -> list[str]:
        return list(self.modalities)

    def check_keys(self, keys: Sequence[str], what: str = "batch") -> None:
        unknown, missing = key_mismatch(self.names, keys)
        if unknown:
            raise BatchError(f"{what} has unknown modality {unknown} (expected {self.names})")
        if missing:
            raise BatchError(
                f"{what} is missing modality {missing} (expected {self.names}); "
                "to mark a modality absent, pass zeros with mask False"
            )

    def validate(self, batch: MultimodalBatch) -> MultimodalBatch:
        """Return ``batch`` unchanged if it matches the schema, else raise BatchError."""
        self.check_keys(list(batch.inputs))
        self.check_keys(list(batch.mask), what="batch mask")
        b = batch.size
        for m, spec in self.modalities.items():
            x = batch.inputs[m]
            if not isinstance(x, Tensor):
                raise BatchError(f"modality '{m}': expected a Tensor, got {type(x).__name__}")
            if not x.is_floating_point():
                raise BatchError(f"modality '{m}': expected a floating dtype, got {x.dtype}")
            if not spec.matches(tuple(x.shape[1:])):
                raise BatchError(
                    f"modality '{m}': expected per-sample shape {format_shape(spec.shape)}, got {tuple(x.shape[1:])}"
                )
            k = batch.mask[m]
            if k.dtype != torch.bool or tuple(k.shape) != (b,):
                raise BatchError(f"mask of '{m}': expected a bool tensor of shape ({b},), got {k.dtype} {tuple(k.shape)}")
            if batch.finite:
                continue
            present = x[k]
            if present.numel() and not torch.isfinite(present).all():
                n_bad = int((~torch.isfinite(present)).flatten(1).any(1).sum())
                raise BatchError(f"modality '{m}': {n_bad} present sample(s) contain NaN or Inf")
        if batch.labels is not None:
            if batch.labels.shape[0] != b:
                raise BatchError(f"labels: expected {b} rows, got {batch.labels.shape[0]}")
            if not batch.finite and batch.labels.is_floating_point() and not torch.isfinite(batch.labels).all():
                raise BatchError("labels contain NaN or Inf")
        return batch


def collate_samples(samples: Sequence[Mapping[str, Any]], modalities: Sequence[str] | None = None) -> MultimodalBatch:
    """Stack per-sample dicts into a :class:`MultimodalBatch`.

    A sample maps each modality to a tensor (or ``None`` when absent) and may
    hold ``"label"``. An absent modality becomes zeros shaped like the other
    samples' entries, with mask ``False``. Every modality must be present in at
    least one sample, so its shape is known.
    """
    if not samples:
        raise BatchError("cannot collate an empty list of samples")
    names = list(modalities) if modalities is not None else [k for k in samples[0] if k != "label"]
    inputs: dict[str, Tensor] = {}
    mask: dict[str, Tensor] = {}
    for m in names:
        for i, s in enumerate(samples):
            extra = [k for k in s if k != "label" and k not in names]
            if extra:
                raise BatchError(f"sample {i} has unknown modality {extra} (expected {names})")
        values = [s.get(m) for s in samples]
        ref = next((v for v in values if v is not None), None)
        if ref is None:
            raise BatchError(f"modality '{m}' is absent from every sample; its shape is unknown")
        ref = torch.as_tensor(ref)
        rows = []
        for i, v in enumerate(values):
            if v is None:
                rows.append(torch.zeros_like(ref, dtype=torch.get_default_dtype() if not ref.is_floating_point() else ref.dtype))
                continue
            v = torch.as_tensor(v)
            if v.shape != ref.shape:
                raise BatchError(f"modality '{m}': sample {i} has shape {tuple(v.shape)}, others {tuple(ref.shape)}")
            rows.append(v if v.is_floating_point() else v.to(torch.get_default_dtype()))
        inputs[m] = torch.stack(rows)
        mask[m] = torch.tensor([v is not None for v in values], dtype=torch.bool)
    labels = None
    if any("label" in s for s in samples):
        if not all("label" in s for s in samples):
            raise BatchError("some samples have a label and others do not")
        labels = torch.stack([torch.as_tensor(s["label"]) for s in samples])
    return MultimodalBatch(inputs, mask, labels)
