"""``TablePredictor``: train on a DataFrame of text, categorical and numerical columns in one call.

::

    from mmrefine import TablePredictor
    p = TablePredictor(label="Recommended IND", column_types="column_info.json", fusion="gating")
    p.fit(train_df)                   # validation carved from train_df; early stopping
    p.predict(test_df)                # a Series of the original label values
    p.evaluate(test_df)               # accuracy, F1, macro-F1, ROC-AUC, PR-AUC (or MAE, RMSE, R2)
    p.save("model/"); TablePredictor.load("model/")

Columns become modalities as :mod:`mmrefine.data.table` describes; ``fusion``
is any fusion module (the Multimodal-Toolkit combiners of
:mod:`mmrefine.fusion.tabular` included); ``refiner=True`` wraps the model in
a Refiner (Sankaran et al.), which pretrains on unlabelled rows
(``unlabelled_df``, or training rows with an empty label) before fine-tuning.
Training runs through the same engine as every experiment (Lightning,
checkpoints in ``run_dir``); a saved predictor is safetensors weights plus
readable JSON, no pickle.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from mmrefine.config import ExperimentConfig, deep_merge, from_dict, to_dict
from mmrefine.core.errors import ConfigError, DataError
from mmrefine.core.protocols import inference_model
from mmrefine.data.batch import BatchSchema
from mmrefine.data.paths import default_cache_dir
from mmrefine.data.settings import DataSettings
from mmrefine.data.table import TableDataModule, TablePreprocessor, _is_missing
from mmrefine.training.builders import build_model, build_task, load_exported

FILES = ("predictor.json", "preprocessing.json", "model.safetensors")


class TablePredictor:
    """A multimodal predictor for one table (see module docstring).

    Args:
        label: the label column.
        column_types: ``{column: text | categorical | numerical}``, the Multimodal-Toolkit
            ``column_info.json`` form, or its path; unnamed columns are inferred.
        fusion: a fusion name (``gating``, ``concat``, ``mlps_concat``, ``gmu``, ...) or a full fusion spec.
        refiner: wrap the model in a Refiner (True, or a ``model.refiner`` spec).
        seed: seed of the initialisation, the validation carve-out and the batch order.
        task: ``binary``, ``multiclass`` or ``regression`` (None: inferred from the label).
        epochs: maximum fine-tuning epochs.
        patience: early-stopping patience in epochs on ``monitor`` (None: no early stopping).
        monitor: the validation metric that picks the checkpoint and stops training: the one
            you will be judged by (``val/f1_macro`` on an imbalanced task, ``val/mae``, ...);
            default ``val/task``, the validation loss, which keeps moving while the predicted
            classes do not (macro-F1 stays flat while a model still predicts the majority class).
        class_weight: ``balanced`` weighs the loss by inverse class frequency.
        pretrain_epochs: Refiner pretraining epochs on all training rows when ``refiner`` is on.
        batch_size: training batch size.
        lr: AdamW learning rate.
        text_dim: width of each text column's encoder output.
        val_fraction: share of the labelled rows held out for validation when no ``val_df`` is given.
        run_dir: where checkpoints and logs go (None: a new temporary directory).
        cache_dir: where text embeddings are cached (None: ``$MMREFINE_CACHE`` or ``~/.cache/mmrefine``).
        progress_bar: show Lightning's progress bar while fitting.
    """

    def __init__(self, label: str, column_types: Any = None, fusion: str | dict = "gating", refiner: bool | dict = False,
                 seed: int = 0, task: str | None = None, epochs: int = 30, patience: int | None = 5,
                 monitor: str | None = None, class_weight: str | None = None, pretrain_epochs: int = 10,
                 batch_size: int = 64, lr: float = 1e-3, text_dim: int = 128, val_fraction: float = 0.15,
                 run_dir: str | None = None, cache_dir: str | None = None, progress_bar: bool = True) -> None:
        self.label, self.column_types, self.seed, self.task = label, column_types, seed, task
        self.fusion = {"name": fusion} if isinstance(fusion, str) else dict(fusion)
        self.refiner = ({"loss": "cosine", "gamma": 0.1} if refiner is True else dict(refiner)) if refiner else None
        self.epochs, self.patience, self.monitor, self.class_weight = epochs, patience, monitor, class_weight
        self.pretrain_epochs, self.batch_size, self.lr, self.text_dim = pretrain_epochs, batch_size, lr, text_dim
        self.val_fraction, self.run_dir, self.cache_dir, self.progress_bar = val_fraction, run_dir, cache_dir, progress_bar
        self.preprocessor: TablePreprocessor | None = None
        self.config: ExperimentConfig | None = None
        self.model: torch.nn.Module | None = None
        self.validation: dict[str, float] = {}

    # -- training -----------------------------------------------------------------
    def _config(self, pre: TablePreprocessor, unlabelled: bool) -> ExperimentConfig:
        task = {"name": "regression" if pre.task == "regression" else "classification"}
        if self.class_weight is not None:
            if pre.task == "regression":
                raise ConfigError("class_weight applies to classification; this label is a regression target")
            task["class_weight"] = self.class_weight
        model: dict[str, Any] = {"default_encoder": {"name": "mlp", "hidden": [], "out_dim": self.text_dim, "dropout": 0.1},
                                 "fusion": self.fusion, "head_hidden": [64], "head_dropout": 0.1}
        pretrain = 0
        if self.refiner is not None:
            model["refiner"] = self.refiner
            pretrain = self.pretrain_epochs if unlabelled else 0
        data = {"name": "table", "label": pre.label, "column_types": pre.kinds, "task_kind": pre.task, "val_fraction": self.val_fraction,
                "batch_size": self.batch_size}
        trainer = {"max_epochs": self.epochs, "accelerator": "cpu", "devices": 1, "patience": self.patience,
                   "monitor": self.monitor or "val/task", "progress_bar": self.progress_bar}
        if trainer["monitor"] in ("val/mae", "val/mse", "val/loss", "val/task"):
            trainer["mode"] = "min"
        raw = {"seed": self.seed, "run_dir": self.run_dir or tempfile.mkdtemp(prefix="mmrefine-table-"), "task": task, "data": data,
               "model": model, "optim": {"lr": self.lr, "weight_decay": 0.01, "warmup_fraction": 0.05},
               "trainer": trainer, "pretrain": {"epochs": pretrain}}
        return from_dict(ExperimentConfig, raw)

    def fit(self, train_df: Any, val_df: Any = None, unlabelled_df: Any = None) -> "TablePredictor":
        """Train on ``train_df`` (rows with an empty label count as unlabelled),
        validate on ``val_df`` or a held-out share of ``train_df``."""
        from mmrefine.training.engine import fit as run_fit

        if len(train_df) == 0:
            raise DataError("the training table is empty")
        if self.label not in train_df.columns:
            raise DataError(f"label column '{self.label}' is not in the table; its columns are {list(train_df.columns)}")
        pre = TablePreprocessor.fit(train_df, self.label, self.column_types, self.task)
        unlabelled = (unlabelled_df is not None and len(unlabelled_df) > 0) or bool(train_df[self.label].map(_is_missing).any())
        cfg = self._config(pre, unlabelled)
        dm = TableDataModule.from_frames(train_df, pre.label, pre.kinds, val=val_df, unlabelled=unlabelled_df, preprocessor=pre,
                                         val_fraction=self.val_fraction, cache_dir=self.cache_dir,
                                         settings=DataSettings(batch_size=self.batch_size))
        dm.shuffle_seed = self.seed
        res = run_fit(cfg, datamodule=dm, test=False)
        self.preprocessor, self.config = pre, cfg
        self.model = inference_model(res.module.model).eval()
        self.validation = res.val
        return self

    # -- inference ------------------------------------------------------------------
    def _fitted(self) -> tuple[TablePreprocessor, torch.nn.Module]:
        if self.preprocessor is None or self.model is None:
            raise ConfigError("this TablePredictor is not fitted: call fit() or TablePredictor.load()")
        return self.preprocessor, self.model

    @torch.no_grad()
    def _outputs(self, df: Any, batch: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        pre, model = self._fitted()
        inputs, mask = pre.transform(df, self.cache_dir or default_cache_dir())
        logits, fused = [], []
        for i in range(0, len(df), batch):
            out = model({m: x[i:i + batch] for m, x in inputs.items()}, {m: k[i:i + batch] for m, k in mask.items()})
            logits.append(out.logits)
            fused.append(out.fused)
        return torch.cat(logits).numpy(), torch.cat(fused).numpy()

    def predict_proba(self, df: Any) -> "pandas.DataFrame":  # noqa: F821
        """Class probabilities, one column per class (classification only)."""
        import pandas as pd

        pre, _ = self._fitted()
        if pre.task == "regression":
            raise ConfigError("predict_proba needs a classification label; this predictor does regression (use predict)")
        logits, _ = self._outputs(df)
        proba = torch.from_numpy(logits).softmax(-1).numpy()
        return pd.DataFrame(proba, columns=list(pre.classes), index=df.index)

    def predict(self, df: Any) -> "pandas.Series":  # noqa: F821
        """Predicted label values (the original classes, or regression targets)."""
        import pandas as pd

        pre, _ = self._fitted()
        logits, _ = self._outputs(df)
        if pre.task == "regression":
            return pd.Series(logits[:, 0], index=df.index, name=pre.label)
        return pd.Series(np.asarray(pre.classes, dtype=object)[logits.argmax(1)], index=df.index, name=pre.label)

    def embed(self, df: Any) -> np.ndarray:
        """The fused embeddings ``z`` of every row, ``(len(df), fused_dim)``."""
        return self._outputs(df)[1]

    def evaluate(self, df: Any) -> dict[str, float]:
        """The task's metrics on the rows of ``df`` that have a label:
        accuracy, F1 (binary: of the second class; else weighted), macro-F1,
        ROC-AUC and PR-AUC (one-vs-rest macro for several classes); or MAE,
        RMSE and R2 for regression."""
        from sklearn import metrics as skm

        pre, _ = self._fitted()
        if pre.label not in df.columns:
            raise DataError(f"evaluate needs the label column '{pre.label}'")
        df = df[~df[pre.label].map(_is_missing)]
        if len(df) == 0:
            raise DataError(f"no row has a label in '{pre.label}'")
        y, _ = pre.labels(df)
        logits, _ = self._outputs(df)
        if pre.task == "regression":
            t, p = y.numpy(), logits[:, 0]
            return {"mae": float(skm.mean_absolute_error(t, p)), "rmse": float(np.sqrt(skm.mean_squared_error(t, p))),
                    "r2": float(skm.r2_score(t, p))}
        t = y.numpy()
        proba = torch.from_numpy(logits).softmax(-1).numpy()
        pred = proba.argmax(1)
        out = {"accuracy": float(skm.accuracy_score(t, pred)), "f1_macro": float(skm.f1_score(t, pred, average="macro"))}
        labels = list(range(len(pre.classes)))
        if pre.task == "binary":
            out["f1"] = float(skm.f1_score(t, pred, pos_label=1))
            if len(np.unique(t)) == 2:
                out["roc_auc"] = float(skm.roc_auc_score(t, proba[:, 1]))
                out["pr_auc"] = float(skm.average_precision_score(t, proba[:, 1]))
        else:
            out["f1"] = float(skm.f1_score(t, pred, average="weighted"))
            if len(np.unique(t)) == len(labels):
                out["roc_auc"] = float(skm.roc_auc_score(t, proba, multi_class="ovr", labels=labels))
                onehot = np.eye(len(labels))[t]
                out["pr_auc"] = float(skm.average_precision_score(onehot, proba, average="macro"))
        return out

    # -- storage ------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``predictor.json`` (settings and the experiment config),
        ``preprocessing.json`` and ``model.safetensors`` (the inference model)."""
        from safetensors.torch import save_file

        pre, model = self._fitted()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "preprocessing.json").write_text(pre.to_json())
        (d / "predictor.json").write_text(json.dumps({"label": self.label, "seed": self.seed, "config": to_dict(cast(ExperimentConfig, self.config)),
                                                      "validation": self.validation}, indent=2))
        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(d / "model.safetensors"))
        return d

    @classmethod
    def load(cls, directory: str | Path, cache_dir: str | None = None) -> "TablePredictor":
        """A predictor saved by :meth:`save` (no training data needed)."""
        d = Path(directory)
        missing = [f for f in FILES if not (d / f).is_file()]
        if missing:
            raise DataError(f"{d} is not a saved TablePredictor: {', '.join(missing)} missing")
        try:
            meta = json.loads((d / "predictor.json").read_text())
            pre = TablePreprocessor.from_json((d / "preprocessing.json").read_text())
        except (json.JSONDecodeError, TypeError) as exc:
            raise DataError(f"{d}: damaged predictor files ({exc})") from exc
        cfg = from_dict(ExperimentConfig, meta["config"])
        shapes = {m: (384,) for m in pre.text_columns}
        if pre.columns("categorical"):
            shapes["categorical"] = (len(pre.columns("categorical")),)
        if pre.columns("numerical"):
            shapes["numerical"] = (2 * len(pre.columns("numerical")),)

        class _Data:  # what build_task reads from a datamodule
            task = "regression" if pre.task == "regression" else "classification"
            num_outputs = pre.num_outputs

        spec = dict(cfg.task or {})
        spec.pop("class_weight", None)  # inference needs no loss weights
        cfg_task = from_dict(ExperimentConfig, deep_merge(to_dict(cfg), {"task": spec}))
        task = build_task(cfg_task, _Data())  # type: ignore[arg-type]
        model = load_exported(build_model(cfg, BatchSchema.from_shapes(shapes), task), d / "model.safetensors")
        p = cls(label=pre.label, seed=meta.get("seed", 0), cache_dir=cache_dir)
        p.preprocessor, p.config, p.model, p.validation = pre, cfg, model, meta.get("validation", {})
        return p
