"""The members of a table predictor's ensemble, each trained once per fold.

Every member sees the same rows, already transformed by the table's
:class:`~mmrefine.data.table.TablePreprocessor` (:class:`TableRows`), and is bagged:
fitted on each fold's training rows, early-stopped (where it can be) on the fold's
held-out rows, which it then predicts; at prediction time its fold models are
averaged. Members are registered in :data:`MEMBERS` by name:

* ``linear``: logistic regression (classification) or ridge regression on one-hot
  categories, standardised numbers with missing-value indicators, and the MiniLM
  sentence embedding of every text column (zeros and a presence flag when empty);
* ``gbm``: scikit-learn's histogram gradient boosting on the categories (native
  categorical splits; the 249 most frequent categories of a column keep their own
  code, the rest share one), the numbers and the text embeddings, missing values as
  NaN; early-stopped on the fold's held-out rows;
* ``network``: the fused multimodal network trained by mmrefine's engine (each text
  column, categorical and numerical columns a modality; the chosen combiner; the
  Refiner pretrained on unlabelled rows when asked), early-stopped on the fold's
  held-out rows by the evaluation metric; with a fine-tuned text encoder it reads
  MiniLM's token states instead of the sentence embeddings.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmrefine.core.errors import RunError
from mmrefine.core.protocols import inference_model
from mmrefine.core.registry import Registry
from mmrefine.data.dataset import TensorMultimodalDataset
from mmrefine.data.table import TablePreprocessor
from mmrefine.predictors.metrics import EvalMetric

log = logging.getLogger("mmrefine")

MEMBERS: Registry = Registry("table predictor member", "MEMBERS")
GBM_CODES = 249  # codes kept per categorical column; HistGradientBoosting bins at most 255 values


class TimeUp(RunError):
    """A member could not be fitted within the predictor's ``time_limit``."""


@dataclass
class TableRows:
    """Every row a predictor is fitted or predicts on, transformed once.

    ``data``: sentence-embedding view (every member); ``tokens``: MiniLM token-state view
    (a network with a fine-tuned text encoder), else None; ``labels``: class indices or
    targets (0 where a row has none); ``has_label``: rows with a label."""

    data: TensorMultimodalDataset
    tokens: TensorMultimodalDataset | None = None
    labels: np.ndarray | None = None
    has_label: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.data)


@dataclass
class Fold:
    """Row indices of one fold: ``train`` (labelled), ``held_out`` (labelled), ``unlabelled``."""

    train: np.ndarray
    held_out: np.ndarray
    unlabelled: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass
class FitContext:
    """What every member's fit reads: the preprocessor, the metric, the seed, the time limit."""

    pre: TablePreprocessor
    metric: EvalMetric
    seed: int = 0
    class_weight: str | None = None
    deadline: float | None = None  # time.monotonic() by which the whole fit must end
    run_dir: Path | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # the network's training settings
    folds_left: int = 1  # folds of the current member not yet fitted, this one included

    def remaining(self) -> float:
        return np.inf if self.deadline is None else self.deadline - time.monotonic()


class Member:
    """One model kind, bagged over folds. Subclasses set ``kind`` and implement
    :meth:`fit_fold` (returns a fold model) and :meth:`predict_fold`."""

    kind: str = ""

    def __init__(self, task: str) -> None:
        self.task = task
        self.models: list[Any] = []
        self.fit_time = 0.0

    # -- to implement ------------------------------------------------------------------
    def fit_fold(self, rows: TableRows, fold: Fold, k: int, ctx: FitContext) -> Any:
        raise NotImplementedError

    def predict_fold(self, model: Any, rows: TableRows, index: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def prepare(self, rows: TableRows, ctx: FitContext) -> None:
        """Anything fitted on every training row without labels (category codes, ...)."""

    # -- shared ----------------------------------------------------------------------------
    def fit(self, rows: TableRows, folds: list[Fold], ctx: FitContext) -> np.ndarray:
        """Fit one model per fold; returns the held-out outputs of every fold (rows not
        held out by any fold are NaN). Raises :class:`TimeUp` when the time limit would be
        passed before the last fold starts (a fold's cost is estimated by the first)."""
        t0 = time.monotonic()
        self.models = []
        self.prepare(rows, ctx)
        n_out = 1 if self.task == "regression" else len(ctx.pre.classes)
        oof = np.full((len(rows), n_out), np.nan)
        for k, fold in enumerate(folds):
            done = time.monotonic() - t0
            if k and ctx.remaining() < done / k:
                raise TimeUp(f"{self.kind}: {k} of {len(folds)} folds fitted when the time limit came")
            if ctx.remaining() <= 0:
                raise TimeUp(f"{self.kind}: no time left to start")
            ctx.folds_left = len(folds) - k
            model = self.fit_fold(rows, fold, k, ctx)
            self.models.append(model)
            oof[fold.held_out] = self.predict_fold(model, rows, fold.held_out).reshape(len(fold.held_out), n_out)
        self.fit_time = time.monotonic() - t0
        return oof[:, 0] if self.task == "regression" else oof

    def predict(self, rows: TableRows) -> np.ndarray:
        """The mean of the fold models' outputs: probabilities ``(n, C)`` or values ``(n,)``."""
        return np.mean([self.predict_fold(m, rows) for m in self.models], axis=0)

    def needs_tokens(self) -> bool:
        return False

    def state(self) -> dict[str, Any]:
        """What :func:`~mmrefine.predictors.storage.save_member` writes (scikit-learn members)."""
        return {"models": self.models}

    def load_state(self, state: dict[str, Any]) -> None:
        self.models = list(state["models"])


# -- features of the scikit-learn members ---------------------------------------------------


def _text_parts(pre: TablePreprocessor, ds: TensorMultimodalDataset, absent: float) -> list[np.ndarray]:
    parts = []
    for m in pre.text_columns:
        present = ds.mask[m].numpy()
        x = ds.inputs[m].numpy().astype(np.float64)
        parts.append(np.where(present[:, None], x, absent))
        parts.append(present[:, None].astype(np.float64))
    return parts


def linear_matrix(pre: TablePreprocessor, ds: TensorMultimodalDataset) -> np.ndarray:
    """One-hot categories (index 0, missing or unseen, has its own column), standardised
    numbers and missing indicators, text embeddings (0 when empty) and presence flags."""
    parts = _text_parts(pre, ds, 0.0)
    if pre.columns("categorical"):
        idx = ds.inputs["categorical"].numpy().astype(np.int64)
        parts += [np.eye(card)[idx[:, k]] for k, card in enumerate(pre.cardinalities)]
    if pre.columns("numerical"):
        parts.append(ds.inputs["numerical"].numpy().astype(np.float64))
    return np.hstack(parts) if parts else np.zeros((len(ds), 0))


def gbm_code_maps(pre: TablePreprocessor, ds: TensorMultimodalDataset) -> list[np.ndarray]:
    """Per categorical column, ``code[index]``: the most frequent ``GBM_CODES`` categories
    of the rows keep a code of their own, the others share code ``GBM_CODES``; index 0
    (missing or unseen) maps to NaN."""
    if not pre.columns("categorical"):
        return []
    idx = ds.inputs["categorical"].numpy().astype(np.int64)
    maps = []
    for k, card in enumerate(pre.cardinalities):
        counts = np.bincount(idx[:, k], minlength=card)
        counts[0] = -1
        order = np.argsort(-counts, kind="stable")
        code = np.full(card, float(GBM_CODES))
        code[order[:GBM_CODES]] = np.arange(min(GBM_CODES, card), dtype=float)
        code[0] = np.nan
        maps.append(code)
    return maps


def gbm_matrix(pre: TablePreprocessor, ds: TensorMultimodalDataset, code_maps: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(X, is_categorical)``: category codes, numbers, text embeddings, NaN where missing."""
    parts, cats = [], []
    if pre.columns("categorical"):
        idx = ds.inputs["categorical"].numpy().astype(np.int64)
        parts += [code[idx[:, k]][:, None] for k, code in enumerate(code_maps)]
        cats += [True] * len(code_maps)
    if pre.columns("numerical"):
        num = ds.inputs["numerical"].numpy().astype(np.float64)
        values = num[:, 0::2].copy()
        values[num[:, 1::2] > 0.5] = np.nan
        parts.append(values)
        cats += [False] * values.shape[1]
    text = _text_parts(pre, ds, np.nan)
    parts += text
    cats += [False] * sum(t.shape[1] for t in text)
    return (np.hstack(parts) if parts else np.zeros((len(ds), 0))), np.array(cats, dtype=bool)


class _SklearnMember(Member):
    """A scikit-learn member: its design matrix is built once per call from the rows."""

    def matrix(self, rows: TableRows) -> np.ndarray:
        raise NotImplementedError

    def make(self, ctx: FitContext) -> Any:
        raise NotImplementedError

    def fit(self, rows: TableRows, folds: list[Fold], ctx: FitContext) -> np.ndarray:
        self.pre = ctx.pre
        self._x = None  # the training matrix, built once for every fold
        try:
            return super().fit(rows, folds, ctx)
        finally:
            self._x = None

    def _rows(self, rows: TableRows) -> np.ndarray:
        if getattr(self, "_x", None) is None or len(self._x) != len(rows):  # type: ignore[has-type]
            self._x = self.matrix(rows)
        return self._x

    def fit_fold(self, rows: TableRows, fold: Fold, k: int, ctx: FitContext) -> Any:
        x, y = self._rows(rows), np.asarray(rows.labels)
        model = self.make(ctx)
        self.fit_model(model, x[fold.train], y[fold.train], x[fold.held_out], y[fold.held_out])
        return model

    def fit_model(self, model: Any, x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray) -> None:
        model.fit(x, y)

    def predict_fold(self, model: Any, rows: TableRows, index: np.ndarray | None = None) -> np.ndarray:
        x = self._rows(rows) if getattr(self, "_x", None) is not None else self.matrix(rows)
        if index is not None:
            x = x[index]
        return self.outputs(model, x)

    def outputs(self, model: Any, x: np.ndarray) -> np.ndarray:
        """Probabilities over every class (a fold may lack a rare class), or values."""
        if self.task == "regression":
            return model.predict(x).astype(np.float64)
        proba = np.zeros((len(x), len(self.pre.classes)))
        proba[:, model.classes_.astype(np.int64)] = model.predict_proba(x)
        return proba

    def predict(self, rows: TableRows) -> np.ndarray:
        x = self.matrix(rows)
        self._x = x
        try:
            return super().predict(rows)
        finally:
            self._x = None


@MEMBERS.register("linear")
class LinearMember(_SklearnMember):
    """Logistic regression (L2, ``C``) or ridge regression (``alpha = 1 / C``); see module docstring."""

    kind = "linear"

    def __init__(self, task: str, C: float = 1.0) -> None:
        super().__init__(task)
        self.C = C

    def matrix(self, rows: TableRows) -> np.ndarray:
        return linear_matrix(self.pre, rows.data)

    def make(self, ctx: FitContext) -> Any:
        from sklearn.linear_model import LogisticRegression, Ridge

        if self.task == "regression":
            return Ridge(alpha=1.0 / self.C)
        return LogisticRegression(C=self.C, max_iter=3000, class_weight=ctx.class_weight)


@MEMBERS.register("gbm")
class GBMMember(_SklearnMember):
    """Histogram gradient boosting; see module docstring.

    Args:
        learning_rate, max_iter, patience: boosting rate, most rounds, rounds without
            improvement of the held-out loss before stopping.
    """

    kind = "gbm"

    def __init__(self, task: str, learning_rate: float = 0.05, max_iter: int = 1000, patience: int = 20) -> None:
        super().__init__(task)
        self.learning_rate, self.max_iter, self.patience = learning_rate, max_iter, patience
        self.code_maps: list[np.ndarray] = []
        self._cats: np.ndarray | None = None

    def prepare(self, rows: TableRows, ctx: FitContext) -> None:
        self.code_maps = gbm_code_maps(ctx.pre, rows.data)

    def matrix(self, rows: TableRows) -> np.ndarray:
        x, self._cats = gbm_matrix(self.pre, rows.data, self.code_maps)
        return x

    def make(self, ctx: FitContext, columns: np.ndarray | None = None) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cats = None if self._cats is None else (self._cats if columns is None else self._cats[columns])
        common = dict(learning_rate=self.learning_rate, max_iter=self.max_iter, early_stopping=True, n_iter_no_change=self.patience,
                      categorical_features=cats if cats is not None and cats.any() else None, random_state=ctx.seed)
        if self.task == "regression":
            return HistGradientBoostingRegressor(**common)
        return HistGradientBoostingClassifier(class_weight=ctx.class_weight, **common)

    def fit_fold(self, rows: TableRows, fold: Fold, k: int, ctx: FitContext) -> Any:
        """A fold model ``{"model", "columns"}``: the columns with a value in the fold's training
        rows (histogram gradient boosting cannot bin a column that is missing on every row)."""
        x, y = self._rows(rows), np.asarray(rows.labels)
        xt, xv, yv = x[fold.train], x[fold.held_out], y[fold.held_out]
        columns = np.flatnonzero(~np.isnan(xt).all(0))
        if len(columns) == 0:  # no value at all in these rows: the training rows' mean or class shares
            yt = y[fold.train]
            prior = np.array([yt.mean()]) if self.task == "regression" else np.bincount(yt, minlength=len(ctx.pre.classes)) / len(yt)
            return {"model": None, "columns": columns, "prior": prior.astype(np.float64)}
        model = self.make(ctx, columns)
        if self.task != "regression":
            seen = np.isin(yv, np.unique(y[fold.train]))  # held-out rows of a class this fold never trained on cannot be scored
            xv, yv = xv[seen], yv[seen]
        if len(yv):
            model.fit(xt[:, columns], y[fold.train], X_val=xv[:, columns], y_val=yv)
        else:  # nothing held out to stop on: the boosting's own split of the training rows
            model.set_params(early_stopping=len(fold.train) >= 20)
            model.fit(xt[:, columns], y[fold.train])
        return {"model": model, "columns": columns}

    def predict_fold(self, model: Any, rows: TableRows, index: np.ndarray | None = None) -> np.ndarray:
        x = self._rows(rows) if getattr(self, "_x", None) is not None else self.matrix(rows)
        if index is not None:
            x = x[index]
        if model["model"] is None:
            prior = model["prior"]
            return np.full(len(x), prior[0]) if self.task == "regression" else np.tile(prior, (len(x), 1))
        return self.outputs(model["model"], x[:, model["columns"]])

    def state(self) -> dict[str, Any]:
        return {"models": self.models, "code_maps": self.code_maps}

    def load_state(self, state: dict[str, Any]) -> None:
        self.models, self.code_maps = list(state["models"]), list(state["code_maps"])
        self._cats = None


# -- the fused network -------------------------------------------------------------------------


def deadline_callback(at: float) -> Any:
    """A Lightning callback that stops training at the end of the epoch that passes ``at``
    (a ``time.monotonic()`` value)."""
    from lightning.pytorch.callbacks import Callback

    class Deadline(Callback):
        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            if time.monotonic() >= at:
                trainer.should_stop = True

    return Deadline()


@MEMBERS.register("network")
class NetworkMember(Member):
    """The fused multimodal network (see module docstring); ``ctx.settings`` holds its
    training settings (the predictor's ``fusion``, ``refiner``, ``epochs``, ...)."""

    kind = "network"

    def __init__(self, task: str) -> None:
        super().__init__(task)
        self.config: Any = None
        self.tokens_from_layer: int | None = None

    def needs_tokens(self) -> bool:
        return self.tokens_from_layer is not None

    def view(self, rows: TableRows) -> TensorMultimodalDataset:
        if self.needs_tokens():
            if rows.tokens is None:
                raise RunError("the network member reads MiniLM token states, and these rows have none")
            return rows.tokens
        return rows.data

    def prepare(self, rows: TableRows, ctx: FitContext) -> None:
        self.tokens_from_layer = ctx.settings.get("tokens_from_layer")

    def fit_fold(self, rows: TableRows, fold: Fold, k: int, ctx: FitContext) -> Any:
        from mmrefine.data.settings import DataSettings
        from mmrefine.data.table import TableDataModule
        from mmrefine.predictors.network import network_config
        from mmrefine.training.engine import fit as run_fit

        view = self.view(rows)
        train_idx = np.concatenate([fold.train, fold.unlabelled])
        has = np.concatenate([np.ones(len(fold.train), bool), np.zeros(len(fold.unlabelled), bool)])
        train = TensorMultimodalDataset({m: x[train_idx] for m, x in view.inputs.items()},
                                        torch.as_tensor(np.asarray(rows.labels)[train_idx]),
                                        {m: v[train_idx] for m, v in view.mask.items()})
        val = view.subset(fold.held_out)
        val.labels = torch.as_tensor(np.asarray(rows.labels)[fold.held_out])
        s = ctx.settings
        dm = TableDataModule.from_datasets(ctx.pre, train, has, val, settings=DataSettings(batch_size=s["batch_size"]))
        dm.shuffle_seed = ctx.seed + k
        run_dir = (ctx.run_dir or Path(".")) / "network" / f"fold_{k}"
        cfg = network_config(ctx.pre, s, ctx.metric, ctx.seed + k, str(run_dir), unlabelled=len(fold.unlabelled) > 0,
                             class_weight=ctx.class_weight)
        callbacks = []
        if ctx.deadline is not None:  # the folds left share the time left
            callbacks.append(deadline_callback(time.monotonic() + ctx.remaining() / max(1, ctx.folds_left)))
        res = run_fit(cfg, datamodule=dm, test=False, callbacks=callbacks)
        self.config = cfg
        return inference_model(res.module.model).eval()  # type: ignore[union-attr]

    @torch.no_grad()
    def outputs(self, model: torch.nn.Module, ds: TensorMultimodalDataset, batch: int = 512) -> tuple[np.ndarray, np.ndarray]:
        """``(outputs, fused)``: probabilities (or values) and fused embeddings of every row."""
        model.eval()
        outs, fused = [], []
        for i in range(0, len(ds), batch):
            out = model({m: x[i:i + batch] for m, x in ds.inputs.items()}, {m: v[i:i + batch] for m, v in ds.mask.items()})
            outs.append(out.logits[:, 0] if self.task == "regression" else out.logits.softmax(-1))
            fused.append(out.fused)
        return torch.cat(outs).double().numpy(), torch.cat(fused).numpy()

    def predict_fold(self, model: Any, rows: TableRows, index: np.ndarray | None = None) -> np.ndarray:
        view = self.view(rows)
        return self.outputs(model, view if index is None else view.subset(index))[0]

    def embed(self, rows: TableRows) -> np.ndarray:
        """The first fold model's fused embeddings."""
        return self.outputs(self.models[0], self.view(rows))[1]
