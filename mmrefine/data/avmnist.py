"""AV-MNIST: built from MNIST + FSDD (``avmnist``), or read from the widely used
preprocessed ``.npy`` layout (``avmnist_npy``).

The ``.npy`` layout:

Files in one folder: ``img_{train,test}.npy`` (N, 784) images (PCA-degraded),
``aud_{train,test}.npy`` (N, 112, 112) uint8 spectrograms, and
``{train,test}_labels.npy``. The validation set is the last ``val_size``
training samples (5,000 in the published split). Images are scaled by 1/255
like the spectrograms. A label file longer than its split (the public sample
ships all 10,000 MNIST test labels beside a 200-image slice) is cut to the
split's length, since labels follow MNIST order; a shorter one is an error.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from mmrefine.core.errors import ConfigError, DataError
from mmrefine.data.avmnist_build import ARRAYS, AVMNISTRecipe, build
from mmrefine.data.datamodule import MultimodalDataModule
from mmrefine.data.dataset import TensorMultimodalDataset
from mmrefine.data.paths import dataset_folder, require_data_root
from mmrefine.data.registry import DATASETS
from mmrefine.data.settings import DataSettings

log = logging.getLogger(__name__)


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
    (default: ``avmnist/`` under the data root).

    Args:
        val_size: the last ``val_size`` training samples form the validation split.
        settings: loader settings shared by every dataset (:class:`~mmrefine.data.DataSettings`).
    """

    def __init__(self, val_size: int = 5000, settings: DataSettings | None = None) -> None:
        super().__init__(settings)
        self.val_size = val_size

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
                torch.from_numpy(np.array(lab[: len(img)], dtype=np.int64)),  # a copy: the file may be mapped read-only
            )
        n = len(parts["train"][0])
        if not 0 < self.val_size < n:
            raise ConfigError(f"data.val_size must be in [1, {n - 1}] for {n} training samples, got {self.val_size}")
        img, aud, lab = parts["train"]
        cut = n - self.val_size
        make = lambda i, a, y: TensorMultimodalDataset({"image": i, "audio": a}, y)  # noqa: E731
        return {"train": make(img[:cut], aud[:cut], lab[:cut]), "val": make(img[cut:], aud[cut:], lab[cut:]), "test": make(*parts["test"])}


@DATASETS.register("avmnist")
class AVMNISTDataModule(MultimodalDataModule):
    """AV-MNIST built from ``mnist/`` and ``fsdd/recordings/`` under the data root
    (recipe and cache: :mod:`mmrefine.data.avmnist_build`). Modalities ``image``
    (784 degraded pixels) and ``audio`` (112 x 112 uint8 spectrogram, served as
    float in [0, 1]); any non-empty subset. ``val_speakers`` (e.g. ``[lucas]``)
    gives validation its own FSDD speakers instead of the training speakers' takes. The first load builds the cache
    (about 30 s on 2 CPU cores) and logs the time; later loads memory-map it.
    ``cache_dir`` defaults to ``$MMREFINE_CACHE`` or ``~/.cache/mmrefine``.

    Args:
        cache_dir: where built arrays are cached (None: ``$MMREFINE_CACHE`` or ``~/.cache/mmrefine``).
        modalities: a non-empty subset of ``image``, ``audio``.
        pca_components: k, the PCA components kept in the images.
        snr_db: signal-to-noise ratio of the noise mixed into the audio.
        build_seed: seed of the pairing and the noise.
        limit: build only this many samples per split (quick tests).
        val_speakers: give validation these FSDD speakers' takes (default: the training speakers').
        settings: loader settings shared by every dataset (:class:`~mmrefine.data.DataSettings`).
    """

    MODALITIES = ("image", "audio")

    def __init__(self, cache_dir: str | None = None, modalities: list[str] | None = None,
                 pca_components: int = 4, snr_db: float = AVMNISTRecipe.snr_db, build_seed: int = 0, limit: int | None = None,
                 val_speakers: list[str] | None = None, settings: DataSettings | None = None) -> None:
        super().__init__(settings)
        mods = list(modalities) if modalities is not None else list(self.MODALITIES)
        unknown = [m for m in mods if m not in self.MODALITIES]
        if unknown or not mods:
            raise ConfigError(f"data.modalities: unknown {unknown}; choose a non-empty subset of {list(self.MODALITIES)}")
        self.cache_dir, self.mods = cache_dir, mods
        self.recipe = AVMNISTRecipe(pca_components=pca_components, snr_db=snr_db, seed=build_seed, limit=limit,
                                    val_speakers=tuple(val_speakers or ()))
        self.meta: dict = {}

    @property
    def num_outputs(self) -> int:
        return 10

    def load(self) -> dict[str, TensorMultimodalDataset]:
        folder, self.meta = build(require_data_root(self.root, "avmnist"), self.recipe, self.cache_dir)
        verb = "reused" if self.meta["reused"] else f"built in {self.meta['build_seconds']:.1f} s"
        log.info("AV-MNIST %s: %s", verb, folder)
        arrays = {name: torch.from_numpy(np.load(folder / f"{name}.npy", mmap_mode="c")) for name in ARRAYS}
        out, lo = {}, 0
        for split, n in self.meta["sizes"].items():
            sel = slice(lo, lo + n)
            out[split] = TensorMultimodalDataset({m: arrays[m][sel] for m in self.mods}, arrays["label"][sel])
            lo += n
        return out
