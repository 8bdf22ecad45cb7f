"""CMU-MOSI, utterance level (binary sentiment), from the upstream CSV layout.

Files under ``ROOT/mosi`` (or ``ROOT`` itself): ``{text,audio,video}/{m}_{train,test}0.csv``
(no header; features then the 0/1 label, one row per utterance), ``text_{train,test}.csv``
(column 0: the 0-based row of each utterance in ``transcripts.csv``) and
``transcripts.csv`` (segment id ``{video}_{n}``, raw text, video number, label).
Feature widths: text 100, audio 73, video 100.

Split: the given speaker-independent train/test split (62 / 31 videos); the
validation set is carved from training **by video** (``val_videos`` of the 62,
chosen with ``split_seed``), so no video appears in two splits. Features are
standardised with training statistics. Raw transcripts per split are in
:attr:`MOSIDataModule.transcripts`. ``text_features="minilm"`` replaces the
given 100-d text features by 384-d MiniLM embeddings of the transcripts
(:mod:`mmrefine.data.text_features`; computed once, cached under ``cache_dir``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from mmrefine.core.errors import ConfigError, DataError
from mmrefine.data.datamodule import MultimodalDataModule
from mmrefine.data.dataset import TensorMultimodalDataset
from mmrefine.data.paths import dataset_folder, default_cache_dir
from mmrefine.data.registry import DATASETS
from mmrefine.data.settings import DataSettings
from mmrefine.data.text_features import minilm_embeddings, minilm_tokens

log = logging.getLogger("mmrefine")

WIDTHS = {"text": 100, "audio": 73, "video": 100}


def _read(path: Path, width: int | None = None) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"missing CMU-MOSI file {path}; see the CMU-MOSI utterance-level CSV layout in the mmrefine docs")
    import pandas as pd

    try:
        arr = pd.read_csv(path, header=None).to_numpy()
    except Exception as exc:  # noqa: BLE001 - pandas raises many parser errors
        raise DataError(f"{path}: malformed CSV ({exc})") from exc
    if width is not None:
        if arr.shape[1] != width + 1:
            raise DataError(f"{path}: expected {width} features + label = {width + 1} columns, got {arr.shape[1]}")
        if not np.issubdtype(arr.dtype, np.number):
            numeric = pd.DataFrame(arr).apply(pd.to_numeric, errors="coerce").to_numpy()
            bad = np.argwhere(np.isnan(numeric) & ~pd.isna(pd.DataFrame(arr)).to_numpy())
            r, c = (int(v) for v in bad[0])
            raise DataError(f"{path}: line {r + 1}, column {c + 1}: non-numeric value {arr[r, c]!r}")
        label = arr[:, -1].astype(np.float64)
        if not np.isfinite(label).all():
            r = int(np.flatnonzero(~np.isfinite(label))[0])
            raise DataError(f"{path}: line {r + 1}, column {width + 1} (the label): missing or not finite")
    return arr


def _missing_rows(path: Path, x: np.ndarray, policy: str) -> np.ndarray:
    """Rows of ``x`` with a missing or non-finite value: an error naming the first
    (``policy="error"``) or a boolean mask of them (``"absent"``)."""
    bad = ~np.isfinite(x)
    if bad.any() and policy == "error":
        r, c = (int(v) for v in np.argwhere(bad)[0])
        raise DataError(
            f"{path}: line {r + 1}, column {c + 1}: missing or not finite ({int(bad.any(1).sum())} row(s) affected); "
            "set data.missing: absent to mark such a row's modality absent"
        )
    return bad.any(1)


@DATASETS.register("mosi")
class MOSIDataModule(MultimodalDataModule):
    """See module docstring. ``modalities``: any non-empty subset of text, audio, video.

    Args:
        modalities: a non-empty subset of ``text``, ``audio``, ``video``.
        val_videos: training videos held out for validation.
        standardize: z-score every modality with training statistics.
        text_features: ``given`` (the CSV features), ``minilm`` (sentence embeddings of the transcripts)
            or ``tokens`` (MiniLM token ids of the transcripts, for the ``mmbt`` architecture).
        cache_dir: cache of MiniLM embeddings.
        missing: ``error`` (a missing or non-finite feature is an error naming file, line and
            column) or ``absent`` (that row's modality is marked absent, counted in a warning).
        max_tokens: transcript length in tokens with ``text_features: tokens``.
        settings: loader settings shared by every dataset (:class:`~mmrefine.data.DataSettings`).
    """

    def __init__(
        self,
        modalities: list[str] | None = None,
        val_videos: int = 10,
        standardize: bool = True,
        text_features: str = "given",
        cache_dir: str | None = None,
        missing: str = "error",
        max_tokens: int = 48,
        settings: DataSettings | None = None,
    ) -> None:
        super().__init__(settings)
        if missing not in ("error", "absent"):
            raise ConfigError(f"data.missing must be 'error' or 'absent', got '{missing}'")
        self.missing = missing
        mods = list(modalities) if modalities is not None else list(WIDTHS)
        unknown = [m for m in mods if m not in WIDTHS]
        if unknown or not mods:
            raise ConfigError(f"data.modalities: unknown {unknown}; choose a non-empty subset of {list(WIDTHS)}")
        if text_features not in ("given", "minilm", "tokens"):
            raise ConfigError(f"data.text_features must be 'given', 'minilm' or 'tokens', got '{text_features}'")
        if text_features != "given" and "text" not in mods:
            raise ConfigError(f"data.text_features='{text_features}' needs the text modality in data.modalities")
        self.max_tokens = max_tokens
        self.mods, self.val_videos, self.standardize = mods, val_videos, standardize
        self.text_features, self.cache_dir = text_features, cache_dir
        self.transcripts: dict[str, list[str]] = {}
        self.videos: dict[str, np.ndarray] = {}

    @property
    def num_outputs(self) -> int:
        return 2

    def load(self) -> dict[str, TensorMultimodalDataset]:
        d = dataset_folder(self.root, "mosi")
        trans = _read(d / "transcripts.csv")
        feats, labels, rows, absent, label_file = {}, {}, {}, {}, {}
        for split in ("train", "test"):
            rows[split] = _read(d / f"text_{split}.csv")[:, 0].astype(np.int64)
            for m in self.mods:
                path = d / m / f"{m}_{split}0.csv"
                arr = _read(path, WIDTHS[m]).astype(np.float64)
                if len(arr) != len(rows[split]):
                    raise DataError(f"{path}: {len(arr)} rows, but text_{split}.csv lists {len(rows[split])}")
                feats[(m, split)] = arr[:, :-1]
                absent[(m, split)] = _missing_rows(path, arr[:, :-1], self.missing)
                y = arr[:, -1].astype(np.int64)
                if split in labels and not np.array_equal(labels[split], y):
                    r = int(np.flatnonzero(labels[split] != y)[0])
                    raise DataError(
                        f"line {r + 1}: the label is {labels[split][r]} in {label_file[split]} but {y[r]} in {path}; "
                        "the modality files must list the same utterances in the same order"
                    )
                labels[split], label_file[split] = y, path
        if self.text_features == "minilm":
            emb = minilm_embeddings(trans[:, 1].astype(str).tolist(), self.cache_dir or default_cache_dir())
            for split in rows:
                feats[("text", split)] = emb[rows[split]].astype(np.float64)
                absent[("text", split)] = np.zeros(len(rows[split]), dtype=bool)
        if self.text_features == "tokens":
            ids = minilm_tokens(trans[:, 1].astype(str).tolist(), self.max_tokens)
            for split in rows:
                feats[("text", split)] = ids[rows[split]].astype(np.float64)
                absent[("text", split)] = np.zeros(len(rows[split]), dtype=bool)
        n_absent = {k: int(v.sum()) for k, v in absent.items() if v.any()}
        if n_absent:
            log.warning("CMU-MOSI: rows with missing values marked absent (data.missing: absent): %s",
                        ", ".join(f"{m} {s}: {n}" for (m, s), n in n_absent.items()))
        videos = {s: trans[rows[s], 2].astype(np.int64) for s in rows}
        texts = {s: trans[rows[s], 1].astype(str).tolist() for s in rows}
        train_videos = np.unique(videos["train"])
        if not 0 < self.val_videos < len(train_videos):
            raise ConfigError(f"data.val_videos must be in [1, {len(train_videos) - 1}], got {self.val_videos}")
        val_set = np.random.default_rng(self.split_seed).choice(train_videos, self.val_videos, replace=False)
        is_val = np.isin(videos["train"], val_set)
        index = {"train": (~is_val, "train"), "val": (is_val, "train"), "test": (np.ones(len(rows["test"]), bool), "test")}
        stats = {}
        for m in self.mods:
            tr = feats[(m, "train")][~is_val & ~absent[(m, "train")]]  # statistics of present rows only
            ids = m == "text" and self.text_features == "tokens"  # token ids are indices: never standardised
            stats[m] = (tr.mean(0), tr.std(0) + 1e-8) if self.standardize and not ids else (0.0, 1.0)
        out = {}
        for name, (sel, src) in index.items():
            inputs, mask = {}, {}
            for m in self.mods:
                gone = absent[(m, src)][sel]
                x = np.where(gone[:, None], 0.0, (np.nan_to_num(feats[(m, src)][sel]) - stats[m][0]) / stats[m][1])
                inputs[m] = torch.as_tensor(x, dtype=torch.float32)
                mask[m] = torch.as_tensor(~gone)
            out[name] = TensorMultimodalDataset(inputs, torch.as_tensor(labels[src][sel]), mask)
            self.videos[name] = videos[src][sel]
            self.transcripts[name] = [t for t, k in zip(texts[src], sel) if k]
        return out
