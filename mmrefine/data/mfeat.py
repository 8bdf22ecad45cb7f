"""UCI Multiple Features: six views of 2,000 handwritten digits (10 classes).

Views and widths: ``fou`` 76 Fourier coefficients, ``fac`` 216 profile
correlations, ``kar`` 64 Karhunen-Loeve coefficients, ``pix`` 240 pixel
averages, ``zer`` 47 Zernike moments, ``mor`` 6 morphological features.

The dataset (CC BY 4.0, Duin, UCI Machine Learning Repository,
doi:10.24432/C5HC70) ships inside the package as ``assets/mfeat.npz`` (see
``assets/MFEAT_ATTRIBUTION.md``), so the demo needs no data root. The same
loader reads the upstream CSV layout (``mfeat-{view}.csv``: a header row,
features, label in the last column) from a data root.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from mmrefine.core.errors import ConfigError, DataError
from mmrefine.data.datamodule import MultimodalDataModule
from mmrefine.data.dataset import TensorMultimodalDataset
from mmrefine.data.paths import dataset_folder
from mmrefine.data.registry import DATASETS
from mmrefine.data.settings import DataSettings

VIEWS: dict[str, int] = {"fou": 76, "fac": 216, "kar": 64, "pix": 240, "zer": 47, "mor": 6}
BUNDLE = Path(__file__).with_name("assets") / "mfeat.npz"
N_SAMPLES = 2000


def read_mfeat_csv(root: str | Path, views: Sequence[str] = tuple(VIEWS)) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Read views from ``root/mfeat-{view}.csv``; raise :class:`DataError` on bad files."""
    root = Path(root)
    missing = [f"mfeat-{v}.csv" for v in views if not (root / f"mfeat-{v}.csv").is_file()]
    if missing:
        raise DataError(
            f"missing UCI Multiple Features file(s) in {root}: {', '.join(missing)}. "
            "Get them from the UCI repository (dataset 72, 'Multiple Features') as CSVs with a header "
            "row and the label in the last column, or use the bundled copy (root: null)."
        )
    data: dict[str, np.ndarray] = {}
    labels: np.ndarray | None = None
    for v in views:
        path = root / f"mfeat-{v}.csv"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "input contained no data": reported below
                arr = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
        except ValueError as exc:
            raise DataError(f"{path}: malformed CSV ({exc})") from exc
        if arr.size == 0:
            raise DataError(f"{path}: no data rows")
        if arr.shape[1] != VIEWS[v] + 1:
            raise DataError(f"{path}: expected {VIEWS[v]} features + label = {VIEWS[v] + 1} columns, got {arr.shape[1]}")
        bad = np.argwhere(~np.isfinite(arr))
        if len(bad):
            r, c = (int(i) for i in bad[0])
            raise DataError(f"{path}: line {r + 2}, column {c + 1}: missing or not finite")
        y = arr[:, -1]
        if not np.all(y == np.round(y)) or y.min() < 0 or y.max() > 9:
            raise DataError(f"{path}: labels must be integers 0-9")
        if labels is not None and not np.array_equal(labels, y.astype(np.int64)):
            raise DataError(f"{path}: labels disagree with the other views' (rows must be in the same order)")
        labels = y.astype(np.int64)
        data[v] = arr[:, :-1]
    if labels is None:
        raise ConfigError("mfeat: choose at least one view")
    return data, labels


def write_bundle(root: str | Path, out: str | Path = BUNDLE) -> Path:
    """Pack the CSVs into one compressed ``.npz`` (integer views stored as int16)."""
    data, labels = read_mfeat_csv(root)
    packed: dict[str, np.ndarray] = {"label": labels.astype(np.int8)}
    for v, x in data.items():
        packed[v] = x.astype(np.int16) if np.all(x == np.round(x)) and np.abs(x).max() < 2**15 else x.astype(np.float32)
    np.savez_compressed(out, **packed)
    return Path(out)


def read_bundle(views: Sequence[str] = tuple(VIEWS)) -> tuple[dict[str, np.ndarray], np.ndarray]:
    if not BUNDLE.is_file():
        raise DataError(f"the bundled dataset {BUNDLE} is missing; reinstall mmrefine")
    with np.load(BUNDLE) as z:
        return {v: z[v].astype(np.float64) for v in views}, z["label"].astype(np.int64)


def stratified_split(labels: np.ndarray, val: float, test: float, seed: int) -> dict[str, np.ndarray]:
    """Per-class shuffled split into train / val / test index arrays."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test, n_val = int(round(test * len(idx))), int(round(val * len(idx)))
        out["test"].append(idx[:n_test])
        out["val"].append(idx[n_test : n_test + n_val])
        out["train"].append(idx[n_test + n_val :])
    return {k: np.sort(np.concatenate(v)) for k, v in out.items()}


@DATASETS.register("mfeat")
class MFeatDataModule(MultimodalDataModule):
    """UCI Multiple Features with any subset of views as modalities.

    Fixed stratified split (``val``/``test`` fractions, ``split_seed``);
    per-view standardisation fitted on the training split only.
    ``root=None`` reads the bundled copy; otherwise the upstream CSVs.

    Args:
        views: a non-empty subset of the six views (default: all).
        val: fraction of samples for validation.
        test: fraction of samples for test.
        standardize: z-score every view with training statistics.
        settings: loader settings shared by every dataset (:class:`~mmrefine.data.DataSettings`). ``root``
            None reads the bundled copy.
    """

    def __init__(
        self,
        views: list[str] | None = None,
        val: float = 0.2,
        test: float = 0.2,
        standardize: bool = True,
        settings: DataSettings | None = None,
    ) -> None:
        super().__init__(settings)
        views = list(views) if views is not None else list(VIEWS)
        unknown = [v for v in views if v not in VIEWS]
        if unknown or not views:
            raise ConfigError(f"data.views: unknown view(s) {unknown}; choose a non-empty subset of {list(VIEWS)}")
        self.views = views
        self.val, self.test, self.standardize = val, test, standardize

    @property
    def num_outputs(self) -> int:
        return 10

    def load(self) -> dict[str, TensorMultimodalDataset]:
        if self.root is None:
            data, labels = read_bundle(self.views)
        else:
            data, labels = read_mfeat_csv(dataset_folder(self.root, "mfeat"), self.views)
        split = stratified_split(labels, self.val, self.test, self.split_seed)
        out = {}
        stats = {}
        for v, x in data.items():
            tr = x[split["train"]]
            mu, sd = (tr.mean(0), tr.std(0) + 1e-8) if self.standardize else (0.0, 1.0)
            stats[v] = (mu, sd)
        for name, idx in split.items():
            inputs = {v: torch.as_tensor((x[idx] - stats[v][0]) / stats[v][1], dtype=torch.float32) for v, x in data.items()}
            out[name] = TensorMultimodalDataset(inputs, torch.as_tensor(labels[idx]))
        return out
