"""Your own table: text, categorical and numerical columns as modalities.

Each **text** column is a modality (MiniLM sentence embeddings, 384-d, cached
on disk by model and texts); an empty or missing text makes that modality
*absent* for the row (mask False), never an embedding of the empty string.
The **categorical** columns form one modality ``categorical`` (one index per
column; index 0 is reserved for a missing or unseen category) and the
**numerical** columns one modality ``numerical`` (each column standardised with
the training rows' mean and standard deviation, followed by a missing-value
indicator per column). Rows with an empty label are unlabelled: left out of
supervised training and used by the Refiner's pretraining or joint mode.

Column types come from ``column_types``: ``{column: text | categorical |
numerical}``, or the Multimodal-Toolkit's ``column_info.json`` form
(``text_cols``, ``cat_cols``, ``num_cols``, ``label_col``), as a mapping or a
path. Columns not named are inferred (:func:`infer_column_types`) and the
inference is logged and kept with the model. Every bad input names its column
(and row where there is one).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, cast

import numpy as np
import torch

from mmrefine.core.errors import ConfigError, DataError
from mmrefine.data.datamodule import MultimodalDataModule, stratified_fraction
from mmrefine.data.dataset import TensorMultimodalDataset
from mmrefine.data.registry import DATASETS
from mmrefine.data.settings import DataSettings

log = logging.getLogger("mmrefine")

KINDS = ("text", "categorical", "numerical", "ignore")
FLOAT32_MAX = float(np.finfo(np.float32).max)
TASK_KINDS = ("binary", "multiclass", "regression")


def _is_missing(v: Any) -> bool:
    """None, NaN, pandas' NA, or a blank string."""
    if v is None:
        return True
    if isinstance(v, str):
        return not v.strip()
    try:
        return bool(v != v)  # NaN is the one value unequal to itself
    except TypeError:  # pandas.NA
        return True


def normalise_columns(df: "pandas.DataFrame") -> "pandas.DataFrame":  # noqa: F821
    """``df`` with every column name a string (``0`` becomes ``"0"``, as JSON would store it);
    duplicated names are a :class:`DataError` naming them."""
    if not all(isinstance(c, str) for c in df.columns):
        df = df.rename(columns=str)
    dup = sorted(set(df.columns[df.columns.duplicated()]))
    if dup:
        raise DataError(f"the table has duplicated column name(s) {dup}; rename them so that each column has its own name")
    return df


def read_column_types(spec: str | Path | Mapping[str, Any] | None) -> tuple[dict[str, str], str | None, bool]:
    """``({column: kind}, label or None, complete)`` from ``{column: kind}`` (a
    kind may be ``ignore``), the Multimodal-Toolkit form, or a JSON file holding
    either. ``complete`` is True for the Multimodal-Toolkit form, which lists
    every column used (the others are ignored, as that toolkit does); the
    columns a ``{column: kind}`` mapping leaves out are inferred."""
    if spec is None:
        return {}, None, False
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        if not path.is_file():
            raise DataError(f"column types file not found: {path}")
        try:
            spec = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(spec, dict):
            raise DataError(f"{path}: expected a JSON object of column types")
    spec = dict(spec)
    mt = {"text_cols": "text", "cat_cols": "categorical", "num_cols": "numerical"}
    if set(spec) & (set(mt) | {"label_col"}):
        out: dict[str, str] = {}
        for key, kind in mt.items():
            for col in spec.pop(key, None) or []:
                out[str(col)] = kind
        label = spec.pop("label_col", None)
        for key in ("label_list", "numerical_transformer_method", "categorical_encode_type"):
            spec.pop(key, None)  # Multimodal-Toolkit options that do not apply here
        if spec:
            raise ConfigError(f"column types: unknown key(s) {sorted(spec)}; expected text_cols, cat_cols, num_cols, label_col")
        return out, (str(label) if label is not None else None), True
    bad = {c: k for c, k in spec.items() if k not in KINDS}
    if bad:
        raise ConfigError(f"column types: {bad} -- each kind must be one of {', '.join(KINDS)}")
    return {str(c): str(k) for c, k in spec.items()}, None, False


def infer_column_types(df: "pandas.DataFrame", label: str, given: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:  # noqa: F821
    """Kinds of the columns ``given`` leaves out, and the columns ignored.

    A numeric column is ``numerical``, unless it holds distinct integers on
    every row (a row id: ignored). A text column is ``text`` when its values
    are long (mean length over 30 characters) or mostly distinct, else
    ``categorical``."""
    import pandas as pd

    kinds, ignored = {}, []
    for col in df.columns:
        if col == label or col in given:
            continue
        s = df[col]
        present = s.dropna()
        if pd.api.types.is_bool_dtype(s):
            kinds[col] = "categorical"
        elif pd.api.types.is_numeric_dtype(s):
            integral = len(present) > 0 and np.all(np.mod(present.to_numpy(dtype=float), 1) == 0)
            if integral and present.is_unique and len(present) == len(s) and len(s) > 20:
                ignored.append(col)
            else:
                kinds[col] = "numerical"
        else:
            text = present.astype(str)
            long = len(text) > 0 and text.str.len().mean() > 30
            distinct = len(text) > 0 and text.nunique() > 0.5 * len(text)
            kinds[col] = "text" if long or distinct else "categorical"
    return kinds, ignored


def modality_name(column: str) -> str:
    """A column's modality name: lower case, runs of other characters as ``_``."""
    name = re.sub(r"[^0-9a-zA-Z]+", "_", column).strip("_").lower() or "text"
    return name if name not in ("categorical", "numerical") else f"{name}_text"


def infer_task(labels: "pandas.Series") -> str:  # noqa: F821
    """``binary``, ``multiclass`` (text labels, or at most 20 distinct integers) or ``regression``."""
    import pandas as pd

    y = labels.dropna()
    n = y.nunique()
    if n < 2:
        raise DataError(f"label column '{labels.name}' has {n} distinct value(s); a predictor needs at least two")
    if pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y):
        integral = np.all(np.mod(y.to_numpy(dtype=float), 1) == 0)
        if not integral or n > 20:
            return "regression"
    return "binary" if n == 2 else "multiclass"


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _to_float(v: Any) -> float:
    if _is_missing(v):
        return np.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return np.nan
    except OverflowError:
        return np.inf if v > 0 else -np.inf


def _shown(v: Any, limit: int = 60) -> str:
    """A cell as an error message shows it: its repr, cut to ``limit`` characters."""
    text = repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def category_key(v: Any) -> str:
    """A category's key: its text, with an integral float written as an integer, so that
    ``3`` and ``3.0`` (an integer column that gained a missing value) are one category."""
    v = _plain(v)
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v)


def value_family(s: "pandas.Series") -> str | None:  # noqa: F821
    """``number``, ``bool``, ``datetime`` or ``text``: what a column's values are (None when every
    value is missing). An object column of numbers is ``number``."""
    import pandas as pd

    present = s[~s.map(_is_missing)]
    if len(present) == 0:
        return None
    if pd.api.types.is_bool_dtype(s):
        return "bool"
    if pd.api.types.is_numeric_dtype(s):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(s):
        return "datetime"
    kinds = {type(_plain(v)) for v in present}
    if kinds <= {int, float}:
        return "number"
    if kinds <= {bool}:
        return "bool"
    return "text"


@dataclass
class TablePreprocessor:
    """Column kinds, category vocabularies, numerical statistics and label
    classes, fitted on training rows (:meth:`fit`) and stored as JSON."""

    label: str
    kinds: dict[str, str]
    task: str = "binary"
    ignored: list[str] = field(default_factory=list)
    vocab: dict[str, list[str]] = field(default_factory=dict)
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)  # numbers are standardised as (x / scale - mean) / std
    classes: list[Any] = field(default_factory=list)
    text_encoder: str = "minilm"
    families: dict[str, str] = field(default_factory=dict)  # value family of each column at fit time
    label_dtype: str | None = None  # the label column's dtype at fit time (predictions come back in it)
    token_length: dict[str, int] = field(default_factory=dict)  # tokens per text column (fine-tuned text encoder)

    @classmethod
    def fit(cls, df: "pandas.DataFrame", label: str, column_types: Any = None, task: str | None = None,  # noqa: F821
            text_encoder: str = "minilm") -> "TablePreprocessor":
        if len(df) == 0:
            raise DataError("the training table is empty")
        df = normalise_columns(df)
        given, mt_label, complete = read_column_types(column_types)
        label = str(label) if label is not None and label != "" else (mt_label or "")
        if not label:
            raise ConfigError("no label column: pass label= (or label_col in the column types)")
        if label not in df.columns:
            raise DataError(f"label column '{label}' is not in the table; its columns are {list(df.columns)}")
        absent = [c for c in given if c not in df.columns]
        if absent:
            raise DataError(f"column types name column(s) {absent} that are not in the table; its columns are {list(df.columns)}")
        if label in given:
            raise ConfigError(f"column '{label}' is the label; leave it out of the column types")
        if complete:
            inferred, ignored = {}, [str(c) for c in df.columns if c != label and c not in given]
            if ignored:
                log.info("columns not in the column types (ignored): %s", ", ".join(ignored))
        else:
            inferred, ignored = infer_column_types(df, label, given)
            if inferred:
                log.info("column types inferred: %s%s", ", ".join(f"{c}: {k}" for c, k in inferred.items()),
                         f"; ignored (row id): {', '.join(ignored)}" if ignored else "")
        ignored += [c for c, k in given.items() if k == "ignore"]
        kinds = {c: given.get(c) or inferred[c] for c in df.columns if (c in given or c in inferred) and given.get(c) != "ignore"}
        if not kinds:
            raise DataError(f"the table has no feature column besides the label '{label}'")
        labelled = df[~df[label].map(_is_missing)]
        task = task or infer_task(labelled[label])
        if task not in TASK_KINDS:
            raise ConfigError(f"task must be one of {', '.join(TASK_KINDS)}, got '{task}'")
        pre = cls(label=label, kinds=kinds, task=task, ignored=ignored, text_encoder=text_encoder,
                  label_dtype=str(labelled[label].dtype))
        for col, kind in kinds.items():
            family = value_family(df[col])
            if family is not None:
                pre.families[col] = family
            if kind == "categorical":
                values = [category_key(v) for v in df[col] if not _is_missing(v)]
                pre.vocab[col] = sorted(set(values))
            elif kind == "numerical":
                ok = pre._numbers(df, col)
                ok = ok[~np.isnan(ok)]
                scale = float(np.abs(ok).max()) if len(ok) else 0.0
                pre.scale[col] = scale if scale > 0 else 1.0  # numbers near the float limit: standardise x / scale
                z = ok / pre.scale[col]
                pre.mean[col] = float(z.mean()) if len(z) else 0.0
                spread = float(z.std()) if len(z) > 1 else 0.0
                pre.std[col] = spread if spread > 1e-9 * max(1.0, abs(pre.mean[col])) else 1.0  # a (nearly) constant column: centred only
        if task == "regression":
            pre._numbers(labelled, label, "label column")
        else:
            classes = sorted({_plain(v) for v in labelled[label]}, key=lambda v: (str(type(v)), v))
            if len(classes) < 2:
                raise DataError(f"label column '{label}' has one class ({classes}); a classifier needs at least two")
            pre.classes = classes
        return pre

    # -- columns ----------------------------------------------------------------
    @property
    def text_columns(self) -> dict[str, str]:
        """``{modality: column}`` of the text columns."""
        return {modality_name(c): c for c, k in self.kinds.items() if k == "text"}

    def columns(self, kind: str) -> list[str]:
        return [c for c, k in self.kinds.items() if k == kind]

    @property
    def modalities(self) -> list[str]:
        mods = list(self.text_columns)
        if self.columns("categorical"):
            mods.append("categorical")
        if self.columns("numerical"):
            mods.append("numerical")
        return mods

    @property
    def num_outputs(self) -> int:
        return 1 if self.task == "regression" else len(self.classes)

    @property
    def cardinalities(self) -> list[int]:
        return [len(self.vocab[c]) + 1 for c in self.columns("categorical")]

    @staticmethod
    def _numbers(df: "pandas.DataFrame", col: str, what: str = "numerical column") -> np.ndarray:  # noqa: F821
        """The column as float64, NaN where missing; text or an infinite value is a
        :class:`DataError` naming the column, the first such row and their count."""
        import pandas as pd

        s = df[col]
        if pd.api.types.is_bool_dtype(s):
            s = s.astype(float)
        try:
            x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError, OverflowError):  # e.g. a Python int too large for a float
            x = np.array([_to_float(v) for v in s], dtype=float)
        bad = np.flatnonzero(np.isnan(x) & ~s.map(_is_missing).to_numpy(dtype=bool))
        if len(bad):
            row = df.index[bad[0]]
            raise DataError(f"{what} '{col}' holds text: row {row} has {_shown(_plain(s.iloc[bad[0]]))} ({len(bad)} such row(s))")
        inf = np.flatnonzero(np.isinf(x))
        if len(inf):
            row = df.index[inf[0]]
            raise DataError(f"{what} '{col}' holds an infinite value: row {row} has {_shown(_plain(s.iloc[inf[0]]))} ({len(inf)} such row(s)); "
                            "make it missing (empty) or finite")
        return x

    def check_columns(self, df: "pandas.DataFrame") -> None:  # noqa: F821
        """Every column the model uses is there and holds values of the family it held at fit
        time (a categorical or text column that turned from text to numbers, or back, would
        otherwise be read as unseen categories or as other texts, silently)."""
        missing = [c for c in self.kinds if c not in df.columns]
        if missing:
            raise DataError(f"the table lacks column(s) {missing} that the model was trained with")
        for col, kind in self.kinds.items():
            before = self.families.get(col)
            if kind == "numerical" or before is None:
                continue  # numerical columns are parsed as numbers, naming the row that is not one
            now = value_family(df[col])
            if now is not None and now != before and {now, before} != {"number", "bool"}:
                raise DataError(f"column '{col}' held {before} values when the model was fitted and now holds {now} values "
                                f"(dtype {df[col].dtype}); convert it back (the model reads it as {kind})")

    # -- transform ----------------------------------------------------------------
    def transform(self, df: "pandas.DataFrame", cache_dir: str | Path, tokens_from_layer: int | None = None,  # noqa: F821
                  max_tokens: int = 256, progress: bool = True, token_ids: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """``(inputs, mask)`` for every row of ``df`` (extra columns are ignored).

        Each text column is its MiniLM sentence embedding ``(384,)``; with
        ``tokens_from_layer=k`` it is instead MiniLM's token states after layer k ``(L, 385)``
        (:func:`~mmrefine.data.text_features.minilm_hidden_states`, for a fine-tuned
        ``minilm_top`` encoder); with ``token_ids`` MiniLM's token ids ``(L,)`` (``[CLS] ...
        [SEP]``, 0-padded; for a model that fine-tunes MiniLM whole, the ``mmbt``
        architecture). ``L`` is fixed per column by the first such call (the training rows:
        its longest text), at most ``max_tokens``. ``progress`` shows a progress bar while
        MiniLM embeds many texts for the first time."""
        if len(df) == 0:
            raise DataError("the table is empty")
        df = normalise_columns(df)
        self.check_columns(df)
        inputs: dict[str, torch.Tensor] = {}
        mask: dict[str, torch.Tensor] = {}
        n = len(df)
        for m, col in self.text_columns.items():
            texts = [None if _is_missing(v) else str(v) for v in df[col]]
            present = np.array([t is not None for t in texts])
            kept = [t for t in texts if t is not None]
            if token_ids:
                emb = np.zeros((n, self.token_length.get(col, 3)), dtype=np.float32)
                if present.any():
                    ids = token_id_rows(kept, self.token_length.get(col, max_tokens), col not in self.token_length)
                    self.token_length.setdefault(col, ids.shape[1])
                    emb = np.zeros((n, ids.shape[1]), dtype=np.float32)
                    emb[present] = ids
            elif tokens_from_layer is None:
                emb = np.zeros((n, 384), dtype=np.float32)
                if present.any():
                    emb[present] = text_features(kept, self.text_encoder, cache_dir, col, progress)
            else:
                states = token_states(kept, tokens_from_layer, max_tokens, self.token_length.get(col))
                self.token_length.setdefault(col, states.shape[1])
                emb = np.zeros((n, *states.shape[1:]), dtype=np.float32)
                emb[present] = states
            inputs[m] = torch.from_numpy(emb)
            mask[m] = torch.from_numpy(present)
        cats = self.columns("categorical")
        if cats:
            idx = np.zeros((n, len(cats)), dtype=np.float32)
            for k, col in enumerate(cats):
                lookup = {v: i + 1 for i, v in enumerate(self.vocab[col])}
                idx[:, k] = [0 if _is_missing(v) else lookup.get(category_key(v), 0) for v in df[col]]
            inputs["categorical"] = torch.from_numpy(idx)
            mask["categorical"] = torch.ones(n, dtype=torch.bool)
        nums = self.columns("numerical")
        if nums:
            out = np.zeros((n, 2 * len(nums)), dtype=np.float32)
            for k, col in enumerate(nums):
                x = self._numbers(df, col)
                miss = np.isnan(x)
                z = (x / self.scale.get(col, 1.0) - self.mean[col]) / self.std[col]
                beyond = ~miss & ~(np.abs(z) < FLOAT32_MAX)  # a value far beyond the training range overflows float32
                if beyond.any():
                    i = int(np.flatnonzero(beyond)[0])
                    raise DataError(f"numerical column '{col}': row {df.index[i]} holds {_shown(_plain(df[col].iloc[i]))}, too far beyond "
                                    f"the training values (at most {self.scale.get(col, 1.0):g} in magnitude) to standardise")
                out[:, 2 * k] = np.where(miss, 0.0, z)
                out[:, 2 * k + 1] = miss
            inputs["numerical"] = torch.from_numpy(out)
            mask["numerical"] = torch.ones(n, dtype=torch.bool)
        return inputs, mask

    def labels(self, df: "pandas.DataFrame") -> tuple[torch.Tensor, np.ndarray]:  # noqa: F821
        """``(labels, has_label)``: class indices (or float targets), 0 where the label is empty."""
        df = normalise_columns(df)
        has = ~df[self.label].map(_is_missing).to_numpy(dtype=bool)
        if self.task == "regression":
            y = np.where(has, np.nan_to_num(self._numbers(df, self.label, "label column")), 0.0)
            return torch.tensor(y, dtype=torch.float32), has
        lookup = {c: i for i, c in enumerate(self.classes)}
        idx = []
        for row, (v, h) in enumerate(zip(df[self.label], has)):
            if not h:
                idx.append(0)
                continue
            key = _plain(v)
            if key not in lookup:
                raise DataError(f"label column '{self.label}': row {df.index[row]} has class {key!r}, unknown to the model "
                                f"(classes {self.classes})")
            idx.append(lookup[key])
        return torch.tensor(idx, dtype=torch.long), has

    def dataset(self, df: "pandas.DataFrame", cache_dir: str | Path, labelled: bool = True,  # noqa: F821
                tokens_from_layer: int | None = None, progress: bool = True, max_tokens: int = 256,
                token_ids: bool = False) -> tuple[TensorMultimodalDataset, np.ndarray]:
        df = normalise_columns(df)
        inputs, mask = self.transform(df, cache_dir, tokens_from_layer, max_tokens, progress=progress, token_ids=token_ids)
        if not labelled or self.label not in df.columns:
            return TensorMultimodalDataset(inputs, None, mask), np.zeros(len(df), dtype=bool)
        y, has = self.labels(df)
        return TensorMultimodalDataset(inputs, y, mask), has

    # -- storage -----------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=_plain)

    @classmethod
    def from_json(cls, text: str) -> "TablePreprocessor":
        """Read :meth:`to_json`'s output back, checking every field (a :class:`DataError` names
        the first field that is missing, of the wrong type or inconsistent)."""
        try:
            raw = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"not valid JSON ({exc})") from exc
        if not isinstance(raw, dict):
            raise DataError("expected a JSON object")
        unknown = sorted(set(raw) - {f.name for f in fields(cls)})
        if unknown:
            raise DataError(f"unknown field(s) {unknown}")

        def need(key: str, kind: type | tuple[type, ...], required: bool = True) -> Any:
            if key not in raw:
                if required:
                    raise DataError(f"field '{key}' is missing")
                return None
            value = raw[key]
            if not isinstance(value, kind) or isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
                raise DataError(f"field '{key}' has the wrong type ({type(value).__name__})")
            return value

        def mapping(key: str, value_kind: type | tuple[type, ...]) -> dict[str, Any]:
            value = need(key, dict, required=False) or {}
            bad = [k for k, v in value.items() if not isinstance(v, value_kind) or isinstance(v, bool)]
            if bad:
                raise DataError(f"field '{key}.{bad[0]}' has the wrong type ({type(value[bad[0]]).__name__})")
            return value

        label, kinds, task = need("label", str), need("kinds", dict), need("task", str)
        bad_kind = {c: k for c, k in kinds.items() if k not in KINDS[:3]}
        if bad_kind or not kinds:
            raise DataError(f"field 'kinds' must map columns to text, categorical or numerical, got {bad_kind or kinds}")
        if task not in TASK_KINDS:
            raise DataError(f"field 'task' must be one of {', '.join(TASK_KINDS)}, got {task!r}")
        pre = cls(label=label, kinds=kinds, task=task, ignored=need("ignored", list, required=False) or [],
                  vocab=mapping("vocab", list), mean=mapping("mean", (int, float)), std=mapping("std", (int, float)),
                  scale=mapping("scale", (int, float)), classes=need("classes", list, required=False) or [],
                  text_encoder=need("text_encoder", str, required=False) or "minilm", families=mapping("families", str),
                  label_dtype=need("label_dtype", str, required=False), token_length=mapping("token_length", int))
        for col in pre.columns("categorical"):
            if col not in pre.vocab or not all(isinstance(v, str) for v in pre.vocab[col]):
                raise DataError(f"field 'vocab.{col}' is missing or not a list of strings")
        for col in pre.columns("numerical"):
            for key, table in (("mean", pre.mean), ("std", pre.std)):
                if col not in table or not np.isfinite(table[col]):
                    raise DataError(f"field '{key}.{col}' is missing or not a finite number")
            if pre.std[col] <= 0 or pre.scale.get(col, 1.0) <= 0 or not np.isfinite(pre.scale.get(col, 1.0)):
                raise DataError(f"field 'std.{col}' / 'scale.{col}' must be positive")
        if task != "regression" and (len(pre.classes) < 2 or len({repr(c) for c in pre.classes}) != len(pre.classes)):
            raise DataError(f"field 'classes' must list at least two distinct classes, got {pre.classes!r}")
        if any(v < 1 for v in pre.token_length.values()):
            raise DataError("field 'token_length' must hold positive token counts")
        return pre


def text_features(texts: list[str], encoder: str, cache_dir: str | Path, column: str, progress: bool = True) -> np.ndarray:
    """``(len(texts), 384)`` sentence embeddings of one text column."""
    if encoder != "minilm":
        raise ConfigError(f"text encoder must be 'minilm', got '{encoder}'")
    from mmrefine.data.text_features import minilm_embeddings

    return minilm_embeddings(texts, cache_dir, progress=f"MiniLM on '{column}'" if progress else None)


def token_states(texts: list[str], layers: int, max_tokens: int, length: int | None) -> np.ndarray:
    """MiniLM token states after ``layers`` layers (see :meth:`TablePreprocessor.transform`)."""
    from mmrefine.data.text_features import minilm_hidden_states

    return minilm_hidden_states(texts, layers, max_tokens, length)


def token_id_rows(texts: list[str], length: int, shrink: bool) -> np.ndarray:
    """``(len(texts), length)`` MiniLM token ids (truncated, 0-padded); with ``shrink`` the
    width is cut to the longest text's token count (at most ``length``)."""
    from mmrefine.data.text_features import minilm_tokens

    ids = minilm_tokens(texts, length)
    if shrink:
        ids = ids[:, : max(3, int((ids != 0).sum(1).max()))]
    return ids.astype(np.float32)


def read_table(path: str | Path) -> "pandas.DataFrame":  # noqa: F821
    """A CSV (or ``.parquet``/``.tsv``) file as a DataFrame, with clear errors."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataError(f"table not found: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"table is empty: {path}")
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",")
    except Exception as exc:  # noqa: BLE001 - any parser failure is a bad file
        raise DataError(f"cannot read table {path}: {exc}") from exc


@DATASETS.register("table")
class TableDataModule(MultimodalDataModule):
    """A table (CSV) as a multimodal dataset (see module docstring).

    Validation is carved from the training rows that have a label (stratified
    for classification) unless ``val_path`` is given; the test split is
    ``test_path`` or, without one, the validation split.

    Args:
        path: training table (CSV, TSV or Parquet).
        label: label column (or ``label_col`` of ``column_types``).
        column_types: ``{column: kind}``, the Multimodal-Toolkit ``column_info.json`` form, or its path.
        test_path: test table.
        val_path: validation table (default: ``val_fraction`` of the training rows).
        val_fraction: share of the labelled training rows held out for validation.
        task_kind: ``binary``, ``multiclass`` or ``regression`` (None: inferred from the label).
        text_encoder: sentence encoder of the text columns (``minilm``).
        text_features: ``embedding`` (each text column one sentence embedding of ``text_encoder``)
            or ``tokens`` (each text column MiniLM token ids, for the ``mmbt`` architecture).
        max_tokens: longest token sequence per text column with ``text_features: tokens``.
        cache_dir: where text embeddings are cached (None: ``$MMREFINE_CACHE`` or ``~/.cache/mmrefine``).
        settings: loader settings shared by every dataset (:class:`~mmrefine.data.DataSettings`).
    """

    default_settings = DataSettings(batch_size=64)

    def __init__(self, path: str | None = None, label: str | None = None, column_types: Any = None,
                 test_path: str | None = None, val_path: str | None = None, val_fraction: float = 0.15,
                 task_kind: str | None = None, text_encoder: str = "minilm", text_features: str = "embedding",
                 max_tokens: int = 128, cache_dir: str | None = None, settings: DataSettings | None = None) -> None:
        super().__init__(settings)
        if not 0 < val_fraction < 1:
            raise ConfigError(f"data.val_fraction must lie in (0, 1), got {val_fraction}")
        if text_features not in ("embedding", "tokens"):
            raise ConfigError(f"data.text_features must be 'embedding' or 'tokens', got '{text_features}'")
        if not 3 <= max_tokens <= 512:
            raise ConfigError(f"data.max_tokens must lie in [3, 512], got {max_tokens}")
        self.text_features, self.max_tokens = text_features, max_tokens
        self.path, self.label, self.column_types = path, label, column_types
        self.test_path, self.val_path, self.val_fraction = test_path, val_path, val_fraction
        self.task_kind, self.text_encoder, self.cache_dir = task_kind, text_encoder, cache_dir
        self.frames: dict[str, Any] | None = None  # set by from_frames
        self.datasets: dict[str, TensorMultimodalDataset] | None = None  # set by from_datasets
        self._given_has_label: np.ndarray | None = None
        self.preprocessor: TablePreprocessor | None = None
        self._has_label: np.ndarray | None = None

    @classmethod
    def from_frames(cls, train: Any, label: str, column_types: Any = None, val: Any = None, test: Any = None,
                    unlabelled: Any = None, preprocessor: TablePreprocessor | None = None, **kwargs: Any) -> "TableDataModule":
        """A datamodule over DataFrames (the :class:`~mmrefine.TablePredictor` route)."""
        dm = cls(label=label, column_types=column_types, **kwargs)
        dm.frames = {"train": train, "val": val, "test": test, "unlabelled": unlabelled}
        dm.preprocessor = preprocessor
        return dm

    @classmethod
    def from_datasets(cls, preprocessor: TablePreprocessor, train: TensorMultimodalDataset, has_label: np.ndarray,
                      val: TensorMultimodalDataset, test: TensorMultimodalDataset | None = None, **kwargs: Any) -> "TableDataModule":
        """A datamodule over rows already transformed by ``preprocessor`` (a fold of a table
        whose text features were computed once): ``has_label`` marks the training rows that
        have a label; the others are unlabelled."""
        if len(has_label) != len(train):
            raise DataError(f"has_label has {len(has_label)} entries for {len(train)} training rows")
        dm = cls(label=preprocessor.label, column_types=preprocessor.kinds, task_kind=preprocessor.task, **kwargs)
        dm.preprocessor = preprocessor
        dm.datasets = {"train": train, "val": val, "test": val if test is None else test}
        dm._given_has_label = np.asarray(has_label, dtype=bool)
        return dm

    def resolve(self, path: str) -> str:
        """``path`` as given when it exists (or is absolute), else under the data root
        (``data.root``, default ``../shared/data`` or ``$MMREFINE_DATA``)."""
        from mmrefine.data.paths import default_data_root

        if Path(path).is_absolute() or Path(path).exists():
            return path
        root = Path(self.root) if self.root else default_data_root()
        return str(root / path) if root is not None else path

    def _frames(self) -> dict[str, Any]:
        if self.frames is not None:
            return self.frames
        if self.path is None:
            raise ConfigError("data.path: the training table is required for dataset 'table'")
        resolve = self.resolve
        if isinstance(self.column_types, str):
            self.column_types = resolve(self.column_types)
        return {"train": read_table(resolve(self.path)),
                "val": read_table(resolve(self.val_path)) if self.val_path else None,
                "test": read_table(resolve(self.test_path)) if self.test_path else None, "unlabelled": None}

    @property
    def task(self) -> str:  # type: ignore[override]
        return "regression" if self.pre.task == "regression" else "classification"

    @property
    def pre(self) -> TablePreprocessor:
        _ = self.splits  # fits the preprocessor when none was given
        return cast(TablePreprocessor, self.preprocessor)

    @property
    def num_outputs(self) -> int:
        return self.pre.num_outputs

    def load(self) -> dict[str, TensorMultimodalDataset]:
        import pandas as pd

        from mmrefine.data.paths import default_cache_dir

        if self.datasets is not None:
            if not self._given_has_label.any():  # type: ignore[union-attr]
                raise DataError(f"no training row has a label in '{self.label}'")
            self._has_label = self._given_has_label
            return dict(self.datasets)
        f = self._frames()
        train = f["train"]
        if f["unlabelled"] is not None and len(f["unlabelled"]):
            extra = f["unlabelled"].copy()
            extra[self.label or ""] = None
            train = pd.concat([train, extra], ignore_index=True)
        if self.preprocessor is None:
            self.preprocessor = TablePreprocessor.fit(train, self.label or "", self.column_types, self.task_kind, self.text_encoder)
        pre = self.preprocessor
        self.label = pre.label
        has = ~train[pre.label].map(_is_missing).to_numpy(dtype=bool)
        if not has.all():
            log.info("%d of %d training rows have no label in '%s': left out of supervised training%s", (~has).sum(), len(has),
                     pre.label, "" if self.joint_unlabelled else " (they feed the Refiner's pretraining or joint mode)")
        cache = self.cache_dir or default_cache_dir()
        as_ids = {"token_ids": self.text_features == "tokens", "max_tokens": self.max_tokens}
        full, has_all = pre.dataset(train, cache, **as_ids)  # one pass (one text-feature call per column) over the whole file
        if not has_all.any():
            raise DataError(f"no training row has a label in '{pre.label}'")
        if f["val"] is None:
            labelled = np.flatnonzero(has_all)
            keys = np.array([category_key(v) for v in train[pre.label].to_numpy()[labelled]])
            held = self._pick(labelled, keys, self.val_fraction)
            keep = np.setdiff1d(np.arange(len(train)), held)
            tr, va, self._has_label = full.subset(keep), full.subset(held), has_all[keep]
        else:
            tr, self._has_label = full, has_all
            va, vhas = pre.dataset(f["val"], cache, **as_ids)
            va = va.subset(np.flatnonzero(vhas))
        te = va
        if f["test"] is not None:
            te, thas = pre.dataset(f["test"], cache, **as_ids)
            if pre.label in f["test"].columns and not thas.all():  # scored rows need a label; a table without one is kept whole
                te = te.subset(np.flatnonzero(thas))
        return {"train": tr, "val": va, "test": te}

    def encoder_defaults(self) -> dict[str, dict[str, Any]]:
        """Encoders the tabular modalities need: embeddings sized by the
        category counts, and the numerical columns as they are."""
        out: dict[str, dict[str, Any]] = {}
        if self.pre.columns("categorical"):
            out["categorical"] = {"name": "categorical", "cardinalities": self.pre.cardinalities}
        if self.pre.columns("numerical"):
            out["numerical"] = {"name": "identity"}
        return out

    def labelled_indices(self) -> np.ndarray:
        """Training rows with a label, of which ``labelled_fraction`` are kept (stratified)."""
        _ = self.splits
        rows = np.flatnonzero(cast(np.ndarray, self._has_label))
        if self.labelled_fraction >= 1.0:
            return rows
        return self._pick(rows, cast(torch.Tensor, self.splits["train"].labels).numpy()[rows], self.labelled_fraction)

    def _pick(self, rows: np.ndarray, keys: np.ndarray, fraction: float) -> np.ndarray:
        """A ``fraction`` of ``rows`` (sorted): stratified by ``keys`` for classification,
        uniformly at random for regression; seeded by ``split_seed`` (called while loading:
        reads the preprocessor directly)."""
        if cast(TablePreprocessor, self.preprocessor).task == "regression":
            rng = np.random.default_rng(self.split_seed)
            return np.sort(rng.permutation(rows)[: max(1, int(round(fraction * len(rows))))])
        return rows[stratified_fraction(keys, fraction, self.split_seed)]

    def labelled_train(self) -> TensorMultimodalDataset:
        return self.splits["train"].subset(self.labelled_indices())
