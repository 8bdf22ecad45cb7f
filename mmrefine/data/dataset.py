"""In-memory multimodal datasets and a resumable shuffling sampler."""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from mmrefine.data.batch import BatchError, MultimodalBatch, collate_samples


def decode(x: Tensor) -> Tensor:
    """uint8 storage to float32 in [0, 1]; other tensors unchanged."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x


class TensorMultimodalDataset(Dataset):
    """Samples held as one tensor per modality.

    Batched fetching (``__getitems__``) returns a whole :class:`MultimodalBatch`
    with one indexing operation per modality, so loading costs no per-sample
    Python work. ``labels`` may be ``None`` (unlabelled data). A uint8 modality
    (spectrograms kept compact, possibly memory-mapped) is returned as float32
    ``x / 255``.
    """

    def __init__(
        self,
        inputs: Mapping[str, Tensor],
        labels: Tensor | None = None,
        mask: Mapping[str, Tensor] | None = None,
    ) -> None:
        if not inputs:
            raise BatchError("a dataset needs at least one modality")
        n = {m: int(x.shape[0]) for m, x in inputs.items()}
        if len(set(n.values())) != 1:
            raise BatchError(f"modalities disagree on the number of samples: {n}")
        self.inputs = dict(inputs)
        self.n = next(iter(n.values()))
        if labels is not None and labels.shape[0] != self.n:
            raise BatchError(f"labels: expected {self.n} rows, got {labels.shape[0]}")
        self.labels = labels
        self.mask = (
            {m: torch.ones(self.n, dtype=torch.bool) for m in self.inputs}
            if mask is None
            else {m: mask[m].bool() for m in self.inputs}
        )
        self._finite, self._finite_key = False, None  # values_finite(): result, and the tensors it was for

    @property
    def modalities(self) -> list[str]:
        return list(self.inputs)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        sample: dict[str, Any] = {m: (decode(x[i]) if self.mask[m][i] else None) for m, x in self.inputs.items()}
        if self.labels is not None:
            sample["label"] = self.labels[i]
        return sample

    def __getitems__(self, indices: Sequence[int]) -> MultimodalBatch:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return MultimodalBatch(
            {m: decode(x[idx]) for m, x in self.inputs.items()},
            {m: k[idx] for m, k in self.mask.items()},
            None if self.labels is None else self.labels[idx],
            finite=self.values_finite(),
        )

    def values_finite(self) -> bool:
        """Whether no present input and no float label holds NaN or Inf. Scanned once (in
        chunks of rows) and cached; rescanned if a tensor is replaced or changed in place
        (its version counter moves). A batch from a dataset that is not finite is scanned
        by :meth:`~mmrefine.data.batch.BatchSchema.validate`, which names the culprit."""
        tensors = [*self.inputs.values(), *self.mask.values(), *([] if self.labels is None else [self.labels])]
        key = tuple((id(t), t._version) for t in tensors)
        if self._finite_key != key:
            ok = all(_finite_rows(x, self.mask[m]) for m, x in self.inputs.items())
            ok = ok and (self.labels is None or _finite_rows(self.labels, None))
            self._finite, self._finite_key = ok, key
        return self._finite

    def subset(self, indices: Sequence[int] | np.ndarray | Tensor) -> "TensorMultimodalDataset":
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        return TensorMultimodalDataset(
            {m: x[idx] for m, x in self.inputs.items()},
            None if self.labels is None else self.labels[idx],
            {m: k[idx] for m, k in self.mask.items()},
        )

    def without_labels(self) -> "TensorMultimodalDataset":
        return TensorMultimodalDataset(self.inputs, None, self.mask)

    def with_missing(self, modalities: Iterable[str]) -> "TensorMultimodalDataset":
        """A copy where ``modalities`` are absent for every sample (zeros, mask False)."""
        drop = set(modalities)
        unknown = drop - set(self.inputs)
        if unknown:
            raise BatchError(f"cannot drop unknown modality {sorted(unknown)} (have {self.modalities})")
        inputs = {m: (torch.zeros_like(x) if m in drop else x) for m, x in self.inputs.items()}
        mask = {m: (torch.zeros_like(k) if m in drop else k) for m, k in self.mask.items()}
        return TensorMultimodalDataset(inputs, self.labels, mask)


def _finite_rows(x: Tensor, present: Tensor | None, chunk: int = 4096) -> bool:
    """No NaN / Inf in the rows of ``x`` where ``present`` (all rows if None); integer data is finite."""
    if not x.is_floating_point():
        return True
    for i in range(0, x.shape[0], chunk):
        part = x[i : i + chunk]
        if present is not None:
            part = part[present[i : i + chunk]]
        if part.numel() and not torch.isfinite(part).all():
            return False
    return True


def collate(items: Any) -> MultimodalBatch:
    """DataLoader ``collate_fn``: passes batched fetches through, stacks sample lists."""
    if isinstance(items, MultimodalBatch):
        return items
    return collate_samples(items)


class EpochShuffleSampler(Sampler[int]):
    """Shuffles with a permutation that depends only on ``(seed, epoch)``.

    Lightning calls :meth:`set_epoch` before every epoch, so a run resumed from a
    checkpoint sees exactly the order an uninterrupted run sees.
    """

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n = n
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n
