"""AV-MNIST in the widely used preprocessed ``.npy`` layout.

Files in one folder: ``img_{train,test}.npy`` (N, 784) images (PCA-degraded),
``aud_{train,test}.npy`` (N, 112, 112) uint8 spectrograms, and
``{train,test}_labels.npy``. The validation set is the last ``val_size``
training samples (5,000 in the published split). Images are scaled by 1/255
like the spectrograms. A label file longer than its split (the public sample
ships all 10,000 MNIST test labels beside a 200-image slice) is cut to the
split's length, since labels follow MNIST order; a shorter one is an error.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from mmrefine.data.datamodule import MultimodalDataModule
from mmrefine.data.dataset import TensorMultimodalDataset
from mmrefine.data.paths import dataset_folder
from mmrefine.data.registry import DATASETS
from mmrefine.errors import ConfigError, DataError


def _load(path: Path, shape_tail: tuple[int, ...] | None = None) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"missing AV-MNIST file {path} (expected the .npy layout: img_/aud_{{train,test}}.npy, {{train,test}}_labels.npy)")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({exc})") from exc
    if shape_tail is not None and tuple(arr.shape[1:]) != shape_tail:
        raise DataError(f"{path}: expected per-sample shape {shape_tail}, got {tuple(arr.shape[1:])}")
    return arr


@DATASETS.register("avmnist_npy")
class AVMNISTNpyDataModule(MultimodalDataModule):
    """See module docstring. ``root`` is the folder holding the ``.npy`` files
    (default: ``avmnist/`` under the data root)."""

    def __init__(self, root: str | None = None, val_size: int = 5000, batch_size: int = 64, eval_batch_size: int | None = None,
                 num_workers: int = 0, labelled_fraction: float = 1.0, split_seed: int = 0) -> None:
        super().__init__(batch_size, eval_batch_size, num_workers, labelled_fraction, split_seed)
        self.root, self.val_size = root, val_size

    @property
    def num_outputs(self) -> int:
        return 10

    def load(self) -> dict[str, TensorMultimodalDataset]:
        d = dataset_folder(self.root, "avmnist")
        parts = {}
        for split in ("train", "test"):
            img = _load(d / f"img_{split}.npy", (784,))
            aud = _load(d / f"aud_{split}.npy", (112, 112))
            lab = _load(d / f"{split}_labels.npy")
            if len(img) != len(aud):
                raise DataError(f"{d}: img_{split}.npy has {len(img)} rows but aud_{split}.npy {len(aud)}")
            if len(lab) < len(img):
                raise DataError(f"{d / f'{split}_labels.npy'}: {len(lab)} labels for {len(img)} samples")
            if len(lab) > len(img):
                warnings.warn(f"{split}_labels.npy has {len(lab)} labels for {len(img)} samples; using the first {len(img)}")
            parts[split] = (
                torch.as_tensor(np.asarray(img, dtype=np.float32) / 255.0),
                torch.as_tensor(np.asarray(aud, dtype=np.float32) / 255.0),
                torch.as_tensor(np.asarray(lab[: len(img)], dtype=np.int64)),
            )
        n = len(parts["train"][0])
        if not 0 < self.val_size < n:
            raise ConfigError(f"data.val_size must be in [1, {n - 1}] for {n} training samples, got {self.val_size}")
        img, aud, lab = parts["train"]
        cut = n - self.val_size
        make = lambda i, a, y: TensorMultimodalDataset({"image": i, "audio": a}, y)  # noqa: E731
        return {"train": make(img[:cut], aud[:cut], lab[:cut]), "val": make(img[cut:], aud[cut:], lab[cut:]), "test": make(*parts["test"])}
