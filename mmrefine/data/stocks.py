"""Stock sectors (Progressive Fusion, Shankar et al., appendix "Financial Data Details"): each stock of a
sector is a modality; predict a target stock's next-period volatility.

Input: ``ROOT/stocks/{TICKER}.csv.gz`` (``Date,High,Low,Open,Close,Volume,Adj Close``).
Tickers are aligned on the dates where all of them trade (inner join on ``Date``).

* daily log returns ``r_t = log(AdjClose_t / AdjClose_{t-1})``;
* modality m at time t: the window ``(r_{t-W+1}, ..., r_t)`` of stock m, shape ``(W, 1)``;
* **target**: the log realised volatility of the target stock over the next h
  trading days, ``y_t = log( sqrt( mean_{i=1..h} r_{t+i}^2 ) + 1e-6 )``,
  standardised with training statistics;
* chronological split by the date of a sample's *last target day*: the first
  ``train`` fraction of dates, then ``val``, then the rest, so no target of one
  split falls in a later split's period (inputs may look back across a boundary);
* returns are standardised per ticker with the mean and std of the training
  period only.

The target stock need not be an input modality (``tickers`` may omit it);
its dates still take part in the alignment. Sector lists are those of Progressive Fusion (Shankar et al.). Tickers without a file raise an error naming them,
unless ``on_missing: skip`` (the shared data lacks GSK, NVS, WBA and AMZN).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from mmrefine.core.errors import ConfigError, DataError
from mmrefine.data.datamodule import MultimodalDataModule
from mmrefine.data.dataset import TensorMultimodalDataset
from mmrefine.data.paths import dataset_folder
from mmrefine.data.registry import DATASETS
from mmrefine.data.settings import DataSettings

SECTORS: dict[str, list[str]] = {
    "fnb": ["CAG", "CPB", "DRI", "GIS", "HRL", "HSY", "K", "MCD", "MKC", "SBUX", "SJM", "TSN", "YUM"],
    "health": ["MRK", "WST", "CVS", "MCK", "ABT", "UNH", "TFX", "PFE", "GSK", "NVS", "WBA"],
    "tech": ["AAPL", "ADBE", "AMD", "AMZN", "GOOG", "HPQ", "IBM", "INTC", "MSFT", "MSI", "NVDA", "ORCL", "QCOM", "ZBRA"],
}


def read_prices(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(dates as datetime64[D], adjusted closes)``; DataError on bad files."""
    import pandas as pd

    try:
        df = pd.read_csv(path, usecols=["Date", "Adj Close"])
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - gzip/parser errors
        raise DataError(f"{path}: unreadable price file ({exc}); expected columns Date,...,Adj Close") from exc
    if df.empty:
        raise DataError(f"{path}: no rows")
    try:
        dates = pd.to_datetime(df["Date"]).to_numpy().astype("datetime64[D]")
        close = df["Adj Close"].astype(float).to_numpy()
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: malformed Date or Adj Close values ({exc})") from exc
    bad = np.flatnonzero(~np.isfinite(close) | (close <= 0))
    if len(bad):
        r = int(bad[0])
        raise DataError(f"{path}: line {r + 2} ({df['Date'].iloc[r]}), column Adj Close: {close[r]!r}; prices must be positive and finite")
    return dates, close


@DATASETS.register("stocks")
class StocksDataModule(MultimodalDataModule):
    """See module docstring. ``sector``: fnb, health or tech (or give ``tickers``).

    Args:
        sector: ``fnb``, ``health`` or ``tech``: the paper's ticker lists.
        tickers: explicit tickers instead of a sector.
        target: the ticker whose volatility is predicted (default: the first).
        window: W, trading days per input window.
        horizon: h, days over which the target volatility is measured.
        train: fraction of dates for training (chronological).
        val: fraction of dates for validation.
        on_missing: ``error`` or ``skip`` for tickers without a file.
        settings: loader settings shared by every dataset (:class:`~mmrefine.data.DataSettings`).
    """

    task = "regression"

    def __init__(self, sector: str | None = "fnb", tickers: list[str] | None = None, target: str | None = None,
                 window: int = 32, horizon: int = 5, train: float = 0.7, val: float = 0.15,
                 on_missing: str = "error", settings: DataSettings | None = None) -> None:
        super().__init__(settings)
        if tickers is None:
            if sector not in SECTORS:
                raise ConfigError(f"data.sector must be one of {list(SECTORS)}, got '{sector}'")
            tickers = SECTORS[sector]
        if on_missing not in ("error", "skip"):
            raise ConfigError(f"data.on_missing must be 'error' or 'skip', got '{on_missing}'")
        if window < 2 or horizon < 1 or not (0 < train < 1 and 0 < val < 1 and train + val < 1):
            raise ConfigError("data: need window >= 2, horizon >= 1, and 0 < train, val with train + val < 1")
        self.tickers, self.target = list(tickers), target
        self.window, self.horizon, self.train_frac, self.val_frac, self.on_missing = window, horizon, train, val, on_missing
        self.dates: dict[str, np.ndarray] = {}

    @property
    def num_outputs(self) -> int:
        return 1

    def load(self) -> dict[str, TensorMultimodalDataset]:
        folder = dataset_folder(self.root, "stocks")
        target = self.target or self.tickers[0]
        missing = [t for t in dict.fromkeys([*self.tickers, target]) if not (folder / f"{t}.csv.gz").is_file()]
        if missing and self.on_missing == "error":
            raise DataError(f"missing price file(s) in {folder}: {', '.join(f'{t}.csv.gz' for t in missing)}; "
                            "download daily prices for them or set data.on_missing: skip")
        if missing:
            warnings.warn(f"skipping tickers without data: {', '.join(missing)}")
        tickers = [t for t in self.tickers if t not in missing]
        if target in missing or not tickers:
            raise DataError(f"no price data for the target {target} or for any input ticker")
        series = {t: read_prices(folder / f"{t}.csv.gz") for t in dict.fromkeys([*tickers, target])}
        common = series[target][0]
        for d, _ in series.values():
            common = np.intersect1d(common, d)
        if len(common) < self.window + self.horizon + 10:
            raise DataError(f"only {len(common)} common trading days for {list(series)}")
        closes = {t: c[np.searchsorted(d, common)] for t, (d, c) in series.items()}
        returns = {t: np.diff(np.log(c)) for t, c in closes.items()}  # r[i] is the return on common[i + 1]
        days = common[1:]
        n = len(days)
        w, h = self.window, self.horizon
        t_idx = np.arange(w - 1, n - h)  # sample at t: inputs r[t-w+1..t], target r[t+1..t+h]
        last_target = t_idx + h
        cut_train = int(self.train_frac * n)
        cut_val = int((self.train_frac + self.val_frac) * n)
        split = np.where(last_target < cut_train, 0, np.where(last_target < cut_val, 1, 2))
        train_days = slice(0, cut_train)
        tgt = returns[target]
        fut = np.lib.stride_tricks.sliding_window_view(tgt[1:], h)[t_idx]  # r[t+1..t+h]
        y = np.log(np.sqrt((fut**2).mean(1)) + 1e-6)
        y_mu, y_sd = y[split == 0].mean(), y[split == 0].std() + 1e-8
        inputs = {}
        for t in tickers:
            r = returns[t]
            mu, sd = r[train_days].mean(), r[train_days].std() + 1e-8
            win = np.lib.stride_tricks.sliding_window_view((r - mu) / sd, w)[t_idx - w + 1]
            inputs[t] = win[..., None].astype(np.float32)
        out = {}
        for k, name in enumerate(("train", "val", "test")):
            sel = split == k
            out[name] = TensorMultimodalDataset(
                {t: torch.as_tensor(np.ascontiguousarray(v[sel])) for t, v in inputs.items()},
                torch.as_tensor(((y[sel] - y_mu) / y_sd)[:, None], dtype=torch.float32),
            )
            self.dates[name] = days[t_idx[sel]]
        self.used_tickers, self.target_ticker = tickers, target
        return out
