"""How a table predictor's members are stored, without pickle.

* the fused network: one ``network/fold_K.safetensors`` per fold (tensors only) and its
  experiment config in ``predictor.json``;
* the scikit-learn members: one ``{member}.skops`` file each, written with ``skops.io``
  and read back with an explicit list of trusted types (:data:`TRUSTED`): the estimators
  and tree predictors of scikit-learn that the members use, and the one function a
  histogram gradient boosting model keeps. A file that names any other type is refused
  (skops never imports a type it is not told to trust), so loading a tampered file
  cannot run code;
* settings, ensemble weights, threshold, scores: readable JSON (``predictor.json``), the
  preprocessing (vocabularies, statistics, classes) in ``preprocessing.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmrefine.core.errors import ConfigError, DataError

TRUSTED = [
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.linear_model._ridge.Ridge",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn._loss.loss.HalfSquaredError",
    "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.link.Interval",
    "functools.partial",
    "sklearn.utils.validation.check_array",
]


def _skops() -> Any:
    try:
        import skops.io as sio
    except ImportError as exc:  # a core dependency; only a broken install lacks it
        raise ConfigError("saving scikit-learn members needs skops: pip install skops") from exc
    return sio


def save_state(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` with skops; refuse (and write nothing) if it holds a type not in :data:`TRUSTED`."""
    sio = _skops()
    tmp = path.with_name(f".{path.name}.tmp")
    sio.dump(state, tmp)
    unknown = sorted(set(sio.get_untrusted_types(file=tmp)) - set(TRUSTED))
    if unknown:
        tmp.unlink()
        raise ConfigError(f"{path.name}: the member holds types that loading would not trust: {unknown}")
    tmp.replace(path)


def load_state(path: Path) -> dict[str, Any]:
    """Read a member written by :func:`save_state`, trusting only :data:`TRUSTED`."""
    sio = _skops()
    if not path.is_file():
        raise DataError(f"{path} is missing")
    try:
        state = sio.load(path, trusted=TRUSTED)
    except Exception as exc:  # noqa: BLE001 - a truncated zip, an untrusted type, a bad schema: all a damaged file
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: cannot read this scikit-learn member ({first})") from exc
    if not isinstance(state, dict) or "models" not in state or not isinstance(state["models"], list) or not state["models"]:
        raise DataError(f"{path}: not a saved member (expected its fold models under 'models')")
    return state
