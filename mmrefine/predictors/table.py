"""``TablePredictor``: train on a DataFrame of text, categorical and numerical columns in one call.

::

    from mmrefine import TablePredictor
    p = TablePredictor(label="Recommended IND", column_types="column_info.json", eval_metric="f1")
    p.fit(train_df)                   # preset "best": network + gradient boosting + linear model, 5-fold bagged, ensembled
    p.leaderboard(test_df)            # each member's and the ensemble's scores, weights and times
    p.predict(test_df)                # a Series in the label's own dtype
    p.evaluate(test_df)               # accuracy, f1 / f1_macro / ..., roc_auc, pr_auc (or rmse, mae, r2)
    p.save("model/"); TablePredictor.load("model/")

Columns become modalities as :mod:`mmrefine.data.table` describes. Presets:

* ``best`` (default): the fused network (``fusion``, any fusion module including the
  Multimodal-Toolkit combiners; the Refiner of Sankaran et al. pretrained on unlabelled
  rows when there are any, ``refiner="auto"``), scikit-learn's histogram gradient
  boosting and a logistic (ridge) regression on the same columns
  (:mod:`mmrefine.predictors.members`), each bagged over ``num_folds`` stratified folds
  (5), combined by a greedy weighted ensemble fitted on their out-of-fold predictions
  (:mod:`mmrefine.predictors.ensemble`; AutoGluon's ``WeightedEnsemble``), so the
  ensemble is never worse than its best member on those predictions;
* ``fast``: the fused network alone, validated on a held-out share of the rows.

``eval_metric`` (:mod:`mmrefine.predictors.metrics`) is what the network early-stops
on, what the ensemble weights maximise and, for a threshold-dependent metric, what picks
the decision :meth:`predict` uses (a threshold for two classes, per-class weights for several). ``time_limit``
bounds the whole fit: members that cannot finish in it are skipped and the
leaderboard says so. ``text_encoder="finetune"`` fine-tunes MiniLM's top layers
inside the network (``finetune_layers``), the lower layers' output computed once.
A saved predictor holds no pickle (:mod:`mmrefine.predictors.storage`).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from mmrefine.config import ExperimentConfig, from_dict, to_dict
from mmrefine.core.errors import ConfigError, DataError, MMRefineError
from mmrefine.data.paths import default_cache_dir
from mmrefine.data.table import TablePreprocessor, _is_missing, normalise_columns
from mmrefine.logging_setup import quiet
from mmrefine.predictors.ensemble import blend, greedy_weights
from mmrefine.predictors.members import MEMBERS, FitContext, Fold, Member, NetworkMember, TableRows, TimeUp
from mmrefine.predictors.metrics import REPORTED, Decision, best_decision, get_metric, labels_of, score, selection_score, signed
from mmrefine.predictors.network import network_refiner

log = logging.getLogger("mmrefine")

FORMAT = 2  # predictor.json layout
PRESETS: dict[str, dict[str, Any]] = {
    "best": {"members": ("linear", "gbm", "network"), "num_folds": 5},
    "fast": {"members": ("network",), "num_folds": 0},
}
TEXT_ENCODERS = ("frozen", "finetune")
MINILM_LAYERS = 6


class TablePredictor:
    """A multimodal predictor for one table (see module docstring).

    Args:
        label: the label column.
        column_types: ``{column: text | categorical | numerical | ignore}``, the Multimodal-Toolkit
            ``column_info.json`` form, or its path; unnamed columns are inferred.
        preset: ``best`` (bagged network + gradient boosting + linear model, ensembled) or ``fast``
            (the network alone).
        eval_metric: the metric you are judged by (``accuracy``, ``balanced_accuracy``, ``f1``,
            ``f1_macro``, ``f1_weighted``, ``f1_micro``, ``mcc``, ``roc_auc``, ``pr_auc``, ``log_loss``;
            ``rmse``, ``mae``, ``r2``). None: ``log_loss`` (classification), ``rmse`` (regression).
        members: the members to train (default: the preset's), from ``linear``, ``gbm``, ``network``.
        num_folds: folds of the bagging (default: the preset's; 0: one validation split of
            ``val_fraction``, or ``val_df``).
        time_limit: seconds for the whole fit, text features included (None: no limit).
        fusion: the network's fusion: a name (``gating``, ``concat``, ``mlps_concat``, ``gmu``, ...) or a full spec.
        refiner: ``auto`` (the Refiner with self-supervised pretraining when there are unlabelled
            rows and the text encoder is frozen), True, False, or a ``model.refiner`` spec.
        text_encoder: ``frozen`` (cached MiniLM sentence embeddings) or ``finetune`` (the network
            fine-tunes MiniLM's top ``finetune_layers`` layers; the other members keep the embeddings).
        finetune_layers: MiniLM layers fine-tuned with ``text_encoder="finetune"`` (1-6).
        finetune_lr: their learning rate (the rest of the network trains at ``lr``).
        max_tokens: tokens per text kept with ``text_encoder="finetune"``.
        seed: seed of the initialisation, the folds and the batch order.
        task: ``binary``, ``multiclass`` or ``regression`` (None: inferred from the label).
        epochs: the network's maximum epochs.
        patience: the network's early-stopping patience in epochs (None: no early stopping).
        monitor: the validation metric the network follows, overriding ``eval_metric``'s (e.g. ``val/task``).
        class_weight: ``balanced`` weighs every member's loss by inverse class frequency.
        pretrain_epochs: Refiner pretraining epochs on every training row when the Refiner is on.
        batch_size, lr, text_dim: the network's batch size, AdamW learning rate, text encoder width.
        val_fraction: share of the labelled rows held out when ``num_folds`` is 0 and no ``val_df`` is given.
        run_dir: where the network's checkpoints and logs go (None: a temporary directory, removed after fit).
        cache_dir: where text embeddings are cached (None: ``$MMREFINE_CACHE`` or ``~/.cache/mmrefine``).
        progress_bar: show Lightning's progress bar while the network trains.
        verbosity: 0 prints nothing; 1 one ``mmrefine:`` line per stage on stderr.
        accelerator: Lightning accelerator of the network (``auto``, ``cpu``, ``gpu``, ...).
    """

    def __init__(self, label: str, column_types: Any = None, preset: str = "best", eval_metric: str | None = None,
                 members: list[str] | tuple[str, ...] | None = None, num_folds: int | None = None, time_limit: float | None = None,
                 fusion: str | dict = "gating", refiner: bool | str | dict = "auto", text_encoder: str = "frozen",
                 finetune_layers: int = 2, finetune_lr: float = 5e-5, max_tokens: int = 256, seed: int = 0, task: str | None = None, epochs: int = 30,
                 patience: int | None = 5, monitor: str | None = None, class_weight: str | None = None, pretrain_epochs: int = 10,
                 batch_size: int = 64, lr: float = 1e-3, text_dim: int = 128, val_fraction: float = 0.15, run_dir: str | None = None,
                 cache_dir: str | None = None, progress_bar: bool = False, verbosity: int = 1, accelerator: str = "auto") -> None:
        if preset not in PRESETS:
            raise ConfigError(f"preset must be one of {', '.join(PRESETS)}, got '{preset}'")
        self.label, self.column_types, self.preset, self.eval_metric = str(label), column_types, preset, eval_metric
        self.members_wanted = list(members if members is not None else PRESETS[preset]["members"])
        unknown = [m for m in self.members_wanted if m not in MEMBERS.names()]
        if unknown or not self.members_wanted:
            raise ConfigError(f"members must be a non-empty list of {', '.join(MEMBERS.names())}, got {self.members_wanted}")
        self.num_folds = PRESETS[preset]["num_folds"] if num_folds is None else num_folds
        if self.num_folds == 1 or self.num_folds < 0:
            raise ConfigError(f"num_folds must be 0 (one validation split) or at least 2, got {self.num_folds}")
        if time_limit is not None and not time_limit > 0:
            raise ConfigError(f"time_limit must be a positive number of seconds, got {time_limit}")
        if text_encoder not in TEXT_ENCODERS:
            raise ConfigError(f"text_encoder must be one of {', '.join(TEXT_ENCODERS)}, got '{text_encoder}'")
        if not 1 <= finetune_layers <= MINILM_LAYERS:
            raise ConfigError(f"finetune_layers must be in [1, {MINILM_LAYERS}], got {finetune_layers}")
        if not 0 < val_fraction < 1:
            raise ConfigError(f"val_fraction must lie in (0, 1), got {val_fraction}")
        if class_weight not in (None, "balanced"):
            raise ConfigError(f"class_weight must be None or 'balanced', got {class_weight!r}")
        self.time_limit, self.text_encoder, self.finetune_layers, self.max_tokens = time_limit, text_encoder, finetune_layers, max_tokens
        self.seed, self.task, self.class_weight, self.val_fraction = seed, task, class_weight, val_fraction
        self.run_dir, self.cache_dir, self.verbosity = run_dir, cache_dir, verbosity
        self.network_settings: dict[str, Any] = {
            "fusion": {"name": fusion} if isinstance(fusion, str) else dict(fusion), "refiner": refiner, "epochs": epochs,
            "patience": patience, "monitor": monitor, "pretrain_epochs": pretrain_epochs, "batch_size": batch_size, "lr": lr,
            "text_dim": text_dim, "progress_bar": progress_bar, "accelerator": accelerator,
            "tokens_from_layer": MINILM_LAYERS - finetune_layers if text_encoder == "finetune" else None, "finetune_lr": finetune_lr,
        }
        refiner_check = refiner if refiner in ("auto", True, False, None) or isinstance(refiner, dict) else None
        if refiner_check is None and refiner is not None:
            raise ConfigError(f"refiner must be 'auto', True, False or a model.refiner spec, got {refiner!r}")
        self.preprocessor: TablePreprocessor | None = None
        self.members: dict[str, Member] = {}
        self.weights: dict[str, float] = {}
        self.threshold: Decision = None  # a binary threshold, per-class weights, or None (argmax)
        self.report: dict[str, dict[str, Any]] = {}  # per member: status, score_val, fit_time_s, weight
        self.validation: dict[str, float] = {}
        self.held_out: dict[str, Any] = {}

    # -- fitting ------------------------------------------------------------------------------
    @property
    def _cache(self) -> str:
        return str(self.cache_dir or default_cache_dir())

    def _rows(self, df: Any, pre: TablePreprocessor, tokens_from_layer: int | None, labelled: bool) -> TableRows:
        """``df`` transformed: sentence embeddings, and MiniLM's token states after layer
        ``tokens_from_layer`` when a fine-tuned network reads them."""
        data, has = pre.dataset(df, self._cache, labelled=labelled, progress=self.verbosity > 0 and self.network_settings["progress_bar"])
        tok = None
        if tokens_from_layer is not None:
            t0 = time.monotonic()
            tok, _ = pre.dataset(df, self._cache, labelled=False, tokens_from_layer=tokens_from_layer, max_tokens=self.max_tokens)
            log.info("MiniLM token states after layer %d (frozen) of %d rows: %.1f s", tokens_from_layer, len(df), time.monotonic() - t0)
        labels = None if data.labels is None else data.labels.numpy()
        return TableRows(data, tok, labels, has)

    def _folds(self, pre: TablePreprocessor, rows: TableRows, n_train: int) -> list[Fold]:
        folds = self._split(pre, rows, n_train)
        if pre.task != "regression":
            y = np.asarray(rows.labels)
            for k, f in enumerate(folds):
                if len(np.unique(y[f.train])) < 2:
                    counts = {str(c): int((y[: n_train] == i)[np.asarray(rows.has_label)[:n_train]].sum()) for i, c in enumerate(pre.classes)}
                    raise DataError(f"label column '{pre.label}': too few labelled rows per class ({counts}) for "
                                    f"{'num_folds=' + str(self.num_folds) if self.num_folds else 'a validation split'}: "
                                    "the training rows of a fold hold one class; give more rows or lower num_folds")
        return folds

    def _split(self, pre: TablePreprocessor, rows: TableRows, n_train: int) -> list[Fold]:
        """Folds over the labelled training rows (``n_train`` first rows); rows after them come
        from ``val_df`` and form the one held-out split."""
        has = np.asarray(rows.has_label)
        labelled = np.flatnonzero(has[:n_train])
        unlabelled = np.flatnonzero(~has[:n_train])
        if len(rows) > n_train:  # val_df given
            held = n_train + np.flatnonzero(has[n_train:])
            if len(held) == 0:
                raise DataError(f"val_df: no row has a label in '{pre.label}'")
            return [Fold(labelled, held, unlabelled)]
        y = np.asarray(rows.labels)[labelled]
        classification = pre.task != "regression"
        if self.num_folds == 0:
            from mmrefine.data.datamodule import stratified_fraction

            if classification:
                held_pos = stratified_fraction(y, self.val_fraction, self.seed)
            else:
                rng = np.random.default_rng(self.seed)
                held_pos = np.sort(rng.permutation(len(labelled))[: max(1, int(round(self.val_fraction * len(labelled))))])
            keep = np.setdiff1d(np.arange(len(labelled)), held_pos)
            if len(keep) == 0:
                raise DataError(f"too few labelled rows ({len(labelled)}) to hold out a validation share")
            return [Fold(labelled[keep], labelled[held_pos], unlabelled)]
        if len(labelled) < self.num_folds:
            raise DataError(f"{len(labelled)} labelled row(s) cannot be split into num_folds={self.num_folds} folds")
        from sklearn.model_selection import KFold, StratifiedKFold

        counts = np.bincount(y.astype(np.int64)) if classification else None
        stratify = classification and counts is not None and counts[counts > 0].min() >= self.num_folds
        splitter = (StratifiedKFold if stratify else KFold)(self.num_folds, shuffle=True, random_state=self.seed)
        return [Fold(labelled[a], labelled[b], unlabelled) for a, b in splitter.split(np.zeros(len(y)), y)]

    def fit(self, train_df: Any, val_df: Any = None, unlabelled_df: Any = None) -> "TablePredictor":
        """Fit every member on ``train_df`` (rows with an empty label, and ``unlabelled_df``, are
        unlabelled: the network's Refiner pretrains on them), then the ensemble. ``val_df``
        replaces the folds with one held-out split. A fit that fails writes nothing."""
        import pandas as pd

        if train_df is None or len(train_df) == 0:
            raise DataError("the training table is empty")
        train_df = normalise_columns(train_df)
        val_df = None if val_df is None else normalise_columns(val_df)
        unlabelled_df = None if unlabelled_df is None else normalise_columns(unlabelled_df)
        if self.label not in train_df.columns:
            raise DataError(f"label column '{self.label}' is not in the table; its columns are {list(train_df.columns)}")
        run_dir = Path(self.run_dir) if self.run_dir else Path(tempfile.mkdtemp(prefix="mmrefine-table-"))
        existed = self.run_dir is not None and run_dir.exists()
        before = set(run_dir.iterdir()) if existed else set()
        ok = False
        try:
            with quiet(self.verbosity):
                frames = [train_df]
                if unlabelled_df is not None and len(unlabelled_df):
                    extra = unlabelled_df.copy()
                    extra[self.label] = None
                    frames.append(extra)
                train = pd.concat(frames, ignore_index=True) if len(frames) > 1 else train_df
                self._fit(train, val_df, run_dir)
            ok = True
        finally:
            if not ok or self.run_dir is None:  # a failed fit leaves nothing; a temporary run directory goes too
                if existed:
                    for p in set(run_dir.iterdir()) - before:
                        shutil.rmtree(p) if p.is_dir() else p.unlink()
                else:
                    shutil.rmtree(run_dir, ignore_errors=True)
        return self

    def _fit(self, train: Any, val_df: Any, run_dir: Path) -> None:
        import pandas as pd

        start = time.monotonic()
        deadline = None if self.time_limit is None else start + self.time_limit
        pre = TablePreprocessor.fit(train, self.label, self.column_types, self.task)
        metric = get_metric(self.eval_metric, pre.task)
        n_train = len(train)
        frame = train if val_df is None else pd.concat([train, val_df], ignore_index=True)
        if val_df is not None:
            if self.label not in val_df.columns:
                raise DataError(f"val_df has no label column '{self.label}'")
            log.info("val_df given: members are fitted on train_df and the ensemble on val_df (num_folds is not used)")
        rows = self._rows(frame, pre, self.network_settings["tokens_from_layer"] if "network" in self.members_wanted else None, labelled=True)
        n_labelled = int(np.asarray(rows.has_label)[:n_train].sum())
        refined = "network" in self.members_wanted and network_refiner(self.network_settings, n_labelled < n_train) is not None
        log.info("%s task, %d training rows (%d labelled%s), %d columns: %s; features in %.1f s", pre.task, n_train, n_labelled,
                 "" if n_labelled == n_train else f", {n_train - n_labelled} unlabelled: "
                 + ("the network's Refiner pretrains on them" if refined else "unused, the Refiner is off"),
                 len(pre.kinds), ", ".join(f"{c} ({k})" for c, k in pre.kinds.items()), time.monotonic() - start)
        folds = self._folds(pre, rows, n_train)
        ctx = FitContext(pre, metric, self.seed, self.class_weight, deadline, run_dir, dict(self.network_settings))
        members: dict[str, Member] = {}
        oof: dict[str, np.ndarray] = {}
        report: dict[str, dict[str, Any]] = {}
        held = np.unique(np.concatenate([f.held_out for f in folds]))
        y_held = np.asarray(rows.labels)[held]
        for name in self.members_wanted:
            member = MEMBERS.get(name)(pre.task if pre.task == "regression" else "classification")
            t0 = time.monotonic()
            try:
                out = member.fit(rows, folds, ctx)
            except TimeUp as exc:
                report[name] = {"status": f"skipped: time_limit ({exc})", "fit_time_s": time.monotonic() - t0}
                log.info("%s: skipped, %s", name, exc)
                continue
            members[name], oof[name] = member, out[held]
            decision = best_decision(metric, pre.task, y_held, oof[name])
            report[name] = {"status": "ok", "fit_time_s": member.fit_time, "folds": len(folds), "threshold": decision,
                            "score_val": score(metric, y_held, oof[name], decision)}
            log.info("%s: %d fold(s) in %.1f s, held-out %s %.4f", name, len(folds), member.fit_time, metric.name, report[name]["score_val"])
        if not members:
            spent = time.monotonic() - start
            why = "; ".join(f"{n} {r['status']}" for n, r in report.items())
            raise ConfigError(f"time_limit={self.time_limit} s is too short: no member finished in {spent:.0f} s ({why}); "
                              "raise time_limit or use preset='fast'")
        weights = greedy_weights(oof, lambda out: selection_score(metric, pre.task, y_held, out))
        ensemble = blend(oof, weights)
        threshold = best_decision(metric, pre.task, y_held, ensemble)
        ensemble_score = score(metric, y_held, ensemble, threshold)
        # the blend's weights were chosen at the plain argmax for several classes: if a member with its
        # own decision scores better on the held-out predictions, that member alone is the ensemble
        top = max(members, key=lambda n: signed(metric, report[n]["score_val"]))
        if signed(metric, report[top]["score_val"]) > signed(metric, ensemble_score):
            weights = {n: float(n == top) for n in weights}
            ensemble, threshold, ensemble_score = oof[top], report[top]["threshold"], report[top]["score_val"]
        for name, w in weights.items():
            report[name]["weight"] = w
        report["ensemble"] = {"status": "ok", "weight": 1.0, "threshold": threshold, "fit_time_s": time.monotonic() - start,
                              "score_val": ensemble_score}
        self.preprocessor, self.members, self.weights, self.threshold, self.report = pre, members, weights, threshold, report
        self.held_out = {"rows": held, "labels": y_held, "outputs": oof}  # what the ensemble was fitted on (not saved)
        self.validation = self._scores(y_held, ensemble, threshold)
        log.info("ensemble of %s: held-out %s %.4f%s; fit in %.1f s", ", ".join(f"{n} {w:.2f}" for n, w in weights.items() if w > 0),
                 metric.name, report["ensemble"]["score_val"], _decision_text(threshold),
                 time.monotonic() - start)

    # -- inference ----------------------------------------------------------------------------
    def _fitted(self) -> TablePreprocessor:
        if self.preprocessor is None or not self.members:
            raise ConfigError("this TablePredictor is not fitted: call fit() or TablePredictor.load()")
        return self.preprocessor

    def _member_outputs(self, df: Any, names: list[str]) -> dict[str, np.ndarray]:
        pre = self._fitted()
        if df is None or len(df) == 0:
            raise DataError("the table to predict on is empty")
        layers = {getattr(self.members[n], "tokens_from_layer", None) for n in names} - {None}
        with quiet(self.verbosity):
            rows = self._rows(df, pre, layers.pop() if layers else None, labelled=False)
            return {n: self.members[n].predict(rows) for n in names}

    def _ensemble_outputs(self, df: Any) -> np.ndarray:
        used = [n for n, w in self.weights.items() if w > 0]
        return blend(self._member_outputs(df, used), self.weights)

    def predict_proba(self, df: Any) -> "pandas.DataFrame":  # noqa: F821
        """Class probabilities of the ensemble, one column per class (classification only)."""
        import pandas as pd

        pre = self._fitted()
        if pre.task == "regression":
            raise ConfigError("predict_proba needs a classification label; this predictor does regression (use predict)")
        return pd.DataFrame(self._ensemble_outputs(df), columns=list(pre.classes), index=df.index)

    def _as_labels(self, out: np.ndarray, threshold: Decision, index: Any) -> "pandas.Series":  # noqa: F821
        import pandas as pd

        pre = self._fitted()
        if pre.task == "regression":  # values, not labels: float whatever the column held
            return pd.Series(np.asarray(out, dtype=np.float64), index=index, name=pre.label)
        values = pd.Series(np.asarray(pre.classes, dtype=object)[labels_of(out, threshold)], index=index, name=pre.label)
        if pre.label_dtype:
            try:
                return values.astype(pre.label_dtype)
            except (TypeError, ValueError):  # a dtype pandas cannot rebuild from its name
                return values
        return values

    def predict(self, df: Any) -> "pandas.Series":  # noqa: F821
        """Predicted labels in the label column's own dtype, or regression values (float64). When
        the evaluation metric depends on the decision (``f1``, ``f1_macro``, ``accuracy``, ...),
        the decision chosen on held-out predictions: a threshold on ``p_1`` for two classes,
        ``argmax_k w_k p_k`` with per-class weights for several."""
        return self._as_labels(self._ensemble_outputs(df), self.threshold, df.index)

    def embed(self, df: Any) -> np.ndarray:
        """The fused embeddings ``z`` of every row, ``(len(df), fused_dim)``, from the network
        (its first fold's model when bagged)."""
        pre = self._fitted()
        net = self.members.get("network")
        if not isinstance(net, NetworkMember):
            raise ConfigError("embed needs the network member, which this predictor does not hold (members=" f"{list(self.members)})")
        with quiet(self.verbosity):
            return net.embed(self._rows(df, pre, net.tokens_from_layer, labelled=False))

    def _labelled(self, df: Any, what: str) -> tuple[Any, np.ndarray]:
        pre = self._fitted()
        if df is None or len(df) == 0:
            raise DataError(f"{what}: the table is empty")
        df = normalise_columns(df)
        if pre.label not in df.columns:
            raise DataError(f"{what} needs the label column '{pre.label}'")
        df = df[~df[pre.label].map(_is_missing)]
        if len(df) == 0:
            raise DataError(f"{what}: no row has a label in '{pre.label}'")
        return df, pre.labels(df)[0].numpy()

    def _scores(self, y: np.ndarray, out: np.ndarray, threshold: Decision) -> dict[str, float]:
        pre = self._fitted() if self.preprocessor is not None else None
        task = pre.task if pre is not None else "binary"
        out_scores = {}
        for name in REPORTED[task]:
            m = get_metric(name, task)
            try:
                out_scores[name] = score(m, y, out, threshold)
            except ValueError:  # e.g. ROC-AUC with one class present
                continue
        return out_scores

    def evaluate(self, df: Any) -> dict[str, float]:
        """The task's metrics on the rows of ``df`` that have a label. Two classes:
        accuracy, balanced_accuracy, f1 (of the positive, second class), f1_macro, mcc (at the
        decision threshold), roc_auc, pr_auc, log_loss; several classes: accuracy,
        balanced_accuracy, f1_macro, f1_weighted, f1_micro, mcc, roc_auc and pr_auc
        (one-vs-rest, macro), log_loss; regression: rmse, mae, r2."""
        df, y = self._labelled(df, "evaluate")
        return self._scores(y, self._ensemble_outputs(df), self.threshold)

    def leaderboard(self, df: Any = None) -> "pandas.DataFrame":  # noqa: F821
        """One row per member and one for the ensemble: ``model``, ``score_val`` (the evaluation
        metric on the held-out predictions it was fitted on), ``score_test`` (on ``df``, when
        given), ``weight`` in the ensemble, ``fit_time_s``, ``pred_time_s`` (on ``df``) and
        ``status`` (``ok`` or why it was skipped), best first."""
        import pandas as pd

        pre = self._fitted()
        metric = get_metric(self.eval_metric, pre.task)
        rows = []
        test: dict[str, float] = {}
        pred_time: dict[str, float] = {}
        if df is not None:
            df, y = self._labelled(df, "leaderboard")
            outputs = {}
            for name in self.members:
                t0 = time.perf_counter()
                outputs[name] = self._member_outputs(df, [name])[name]
                pred_time[name] = time.perf_counter() - t0
                test[name] = score(metric, y, outputs[name], self.report[name].get("threshold"))
            test["ensemble"] = score(metric, y, blend(outputs, self.weights), self.threshold)
            pred_time["ensemble"] = sum(pred_time[n] for n, w in self.weights.items() if w > 0)
        for name, r in self.report.items():
            rows.append({"model": name, "score_val": r.get("score_val", np.nan), **({"score_test": test.get(name, np.nan)} if df is not None else {}),
                         "eval_metric": metric.name, "weight": r.get("weight", 0.0 if name != "ensemble" else 1.0),
                         "fit_time_s": r.get("fit_time_s", np.nan), **({"pred_time_s": pred_time.get(name, np.nan)} if df is not None else {}),
                         "status": r["status"]})
        board = pd.DataFrame(rows)
        key = "score_test" if df is not None else "score_val"
        board["_order"] = board[key].map(lambda v: -np.inf if v != v else (v if metric.greater_is_better else -v))
        return board.sort_values("_order", ascending=False, kind="stable").drop(columns="_order").reset_index(drop=True)

    # -- storage ------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``predictor.json`` (settings, ensemble, scores, the network's config),
        ``preprocessing.json``, ``network/fold_K.safetensors`` and ``{member}.skops``
        (see :mod:`mmrefine.predictors.storage`)."""
        from safetensors.torch import save_file

        from mmrefine.predictors.storage import save_state

        pre = self._fitted()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        members: dict[str, Any] = {}
        for name, member in self.members.items():
            if isinstance(member, NetworkMember):
                (d / "network").mkdir(exist_ok=True)
                for k, model in enumerate(member.models):
                    save_file({n: v.detach().contiguous().cpu() for n, v in model.state_dict().items()}, str(d / "network" / f"fold_{k}.safetensors"))
                members[name] = {"kind": member.kind, "folds": len(member.models), "config": to_dict(member.config)}
            else:
                save_state(member.state(), d / f"{name}.skops")
                members[name] = {"kind": member.kind, "folds": len(member.models), "file": f"{name}.skops"}
        (d / "preprocessing.json").write_text(pre.to_json())
        meta = {"format": FORMAT, "label": self.label, "preset": self.preset, "eval_metric": self.eval_metric, "seed": self.seed,
                "members": members, "weights": self.weights, "threshold": self.threshold, "report": self.report,
                "validation": self.validation, "text_encoder": self.text_encoder}
        (d / "predictor.json").write_text(json.dumps(meta, indent=2, default=float))
        return d

    @classmethod
    def load(cls, directory: str | Path, cache_dir: str | None = None, verbosity: int = 1) -> "TablePredictor":
        """A predictor saved by :meth:`save` (no training data needed). A damaged or edited
        directory is a :class:`~mmrefine.DataError` naming the file and the field."""
        d = Path(directory)
        missing = [f for f in ("predictor.json", "preprocessing.json") if not (d / f).is_file()]
        if missing:
            raise DataError(f"{d} is not a saved TablePredictor: {', '.join(missing)} missing")
        meta = _read_json(d / "predictor.json")
        try:
            pre = TablePreprocessor.from_json((d / "preprocessing.json").read_bytes().decode("utf-8", errors="replace"))
        except DataError as exc:
            raise DataError(f"{d / 'preprocessing.json'}: {exc}") from exc
        if meta.get("format") != FORMAT:
            raise DataError(f"{d / 'predictor.json'}: field 'format' is {meta.get('format')!r}; this version reads format {FORMAT} "
                            "(a predictor saved by an older mmrefine: fit it again)")
        metric = meta.get("eval_metric")
        try:
            get_metric(metric if metric is None or isinstance(metric, str) else repr(metric), pre.task)
        except ConfigError as exc:
            raise DataError(f"{d / 'predictor.json'}: field 'eval_metric': {exc}") from exc
        p = cls(label=_field(meta, "label", str, d), seed=_field(meta, "seed", int, d), cache_dir=cache_dir, verbosity=verbosity,
                eval_metric=metric)
        if p.label != pre.label:
            raise DataError(f"{d / 'predictor.json'}: field 'label' is '{p.label}' but preprocessing.json's label is '{pre.label}'")
        for name, spec in _field(meta, "members", dict, d).items():
            if not isinstance(spec, dict) or spec.get("kind") not in MEMBERS.names():
                raise DataError(f"{d / 'predictor.json'}: field 'members.{name}' is not a member description")
            p.members[name] = _load_member(d, name, spec, pre)
        weights = _field(meta, "weights", dict, d)
        if (not p.members or set(weights) != set(p.members) or not all(_is_number(w) and w >= 0 for w in weights.values())
                or abs(sum(weights.values()) - 1) > 1e-6):
            raise DataError(f"{d / 'predictor.json'}: field 'weights' must give each saved member {list(p.members)} a weight, summing to 1")
        threshold = meta.get("threshold")
        if not _valid_decision(threshold, pre):
            raise DataError(f"{d / 'predictor.json'}: field 'threshold' must be a number in (0, 1) (two classes), "
                            f"{len(pre.classes)} positive class weights (several classes) or null, got {threshold!r}")
        report = meta.get("report", {})
        if not isinstance(report, dict) or not all(isinstance(r, dict) and isinstance(r.get("status"), str) for r in report.values()):
            raise DataError(f"{d / 'predictor.json'}: field 'report' must map each member to its record (with a 'status')")
        validation = meta.get("validation", {})
        if not isinstance(validation, dict):
            raise DataError(f"{d / 'predictor.json'}: field 'validation' must be an object of scores")
        p.preprocessor, p.weights, p.threshold = pre, {k: float(v) for k, v in weights.items()}, threshold
        p.report = {n: r for n, r in report.items()} or {n: {"status": "ok"} for n in p.members}
        for n in [*p.members, "ensemble"]:
            p.report.setdefault(n, {"status": "ok"})
        p.validation, p.members_wanted = validation, list(p.members)
        return p


def _load_member(d: Path, name: str, spec: dict[str, Any], pre: TablePreprocessor) -> Member:
    """One saved member; any error names the file it came from."""
    from mmrefine.predictors.network import build_network
    from mmrefine.predictors.storage import load_state
    from mmrefine.training.builders import load_exported

    member = MEMBERS.get(spec["kind"])("regression" if pre.task == "regression" else "classification")
    where = f"{d / 'predictor.json'}: field 'members.{name}"
    if not isinstance(member, NetworkMember):
        member.load_state(load_state(d / _field(spec, "file", str, d, f"members.{name}.")))
        member.pre = pre  # type: ignore[attr-defined]
        try:
            member.predict(TableRows(_probe_rows(pre)))
        except Exception as exc:  # noqa: BLE001 - a member that cannot predict is a damaged file
            raise DataError(f"{d / spec['file']}: this member does not fit the preprocessing in {d / 'preprocessing.json'} "
                            f"({type(exc).__name__}: {_first_line(exc)})") from exc
        return member
    try:
        cfg = from_dict(ExperimentConfig, _field(spec, "config", dict, d, f"members.{name}."))
        enc = [e for e in cfg.model.encoders.values() if isinstance(e, dict) and e.get("name") == "minilm_top"]
        member.tokens_from_layer = int(enc[0].get("from_layer", 4)) if enc else None
    except DataError:
        raise
    except (MMRefineError, TypeError, ValueError) as exc:
        raise DataError(f"{where}.config': {exc}") from exc
    member.config = cfg
    folds = _field(spec, "folds", int, d, f"members.{name}.")
    files = [d / "network" / f"fold_{k}.safetensors" for k in range(folds)]
    absent = [str(f) for f in files if not f.is_file()]
    if absent or not files:
        raise DataError(f"{where}.folds': the network's weights are missing ({', '.join(absent) or 'no fold'})")
    member.models = []
    for f in files:
        try:
            model = build_network(cfg, pre)
        except Exception as exc:  # noqa: BLE001 - a config that builds no network is a damaged file
            raise DataError(f"{where}.config': describes no network that can be built ({_first_line(exc)})") from exc
        try:
            member.models.append(load_exported(model, f))
        except Exception as exc:  # noqa: BLE001 - safetensors' errors on a truncated or foreign file
            raise DataError(f"{f}: does not hold the weights of the network described in {d / 'predictor.json'} "
                            f"(field 'members.{name}.config'): {_first_line(exc)}") from exc
    return member


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)


def _valid_decision(decision: Any, pre: TablePreprocessor) -> bool:
    """A saved decision: null, a threshold in (0, 1) for two classes, or one positive weight per class."""
    if decision is None:
        return True
    if pre.task == "binary" and _is_number(decision):
        return 0 < decision < 1
    if pre.task == "multiclass" and isinstance(decision, list):
        return len(decision) == len(pre.classes) and all(_is_number(w) and w > 0 for w in decision)
    return False


def _decision_text(decision: Decision) -> str:
    if decision is None:
        return ""
    if isinstance(decision, list):
        return " with class weights " + ", ".join(f"{w:.2f}" for w in decision)
    return f" at threshold {decision:.2f}"


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _probe_rows(pre: TablePreprocessor) -> Any:
    """One all-missing row in the preprocessing's layout: a loaded member must predict on it."""
    import torch

    from mmrefine.data.dataset import TensorMultimodalDataset

    inputs: dict[str, torch.Tensor] = {m: torch.zeros(1, 384) for m in pre.text_columns}
    if pre.columns("categorical"):
        inputs["categorical"] = torch.zeros(1, len(pre.columns("categorical")))
    if pre.columns("numerical"):
        inputs["numerical"] = torch.zeros(1, 2 * len(pre.columns("numerical")))
    return TensorMultimodalDataset(inputs, None, {m: torch.zeros(1, dtype=torch.bool) for m in inputs})


def _read_json(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); the file is damaged or truncated") from exc
    if not isinstance(meta, dict):
        raise DataError(f"{path}: expected a JSON object")
    return meta


def _field(meta: dict[str, Any], key: str, kind: type, d: Path, prefix: str = "") -> Any:
    if key not in meta:
        raise DataError(f"{d / 'predictor.json'}: field '{prefix}{key}' is missing")
    value = meta[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise DataError(f"{d / 'predictor.json'}: field '{prefix}{key}' must be {kind.__name__}, got {type(value).__name__}")
    return value
