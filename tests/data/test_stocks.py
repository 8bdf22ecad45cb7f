import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmrefine.core.errors import ConfigError, DataError
from mmrefine.data.settings import DataSettings
from mmrefine.data.stocks import StocksDataModule
from tests.conftest import DATA_ROOT, requires_data

pytestmark = requires_data("stocks")
TICKERS = ["MCD", "SBUX", "YUM"]


@pytest.fixture(scope="module")
def dm() -> StocksDataModule:
    d = StocksDataModule(tickers=TICKERS, target="SBUX", window=8, horizon=3, settings=DataSettings(root=str(DATA_ROOT)))
    d.setup()
    return d


def test_chronological_split_shapes_and_train_only_normalisation(dm: StocksDataModule) -> None:
    s = dm.splits
    assert dm.schema.names == TICKERS and dm.schema.modalities["MCD"].shape == (8, 1)
    assert dm.dates["train"].max() < dm.dates["val"].min() and dm.dates["val"].max() < dm.dates["test"].min()
    y = s["train"].labels
    assert abs(y.mean().item()) < 1e-4 and abs(y.std().item() - 1) < 1e-2  # fitted on training targets
    last = s["train"].inputs["MCD"][:, -1, 0]  # each training day's return once
    assert abs(last.mean().item()) < 0.05 and abs(last.std().item() - 1) < 0.05


def test_target_is_log_realised_volatility_of_the_next_days(dm: StocksDataModule) -> None:
    frames = {t: pd.read_csv(DATA_ROOT / "stocks" / f"{t}.csv.gz", usecols=["Date", "Adj Close"]) for t in TICKERS}
    common = sorted(set.intersection(*[set(f["Date"]) for f in frames.values()]))
    sb = frames["SBUX"].set_index("Date").loc[common, "Adj Close"].to_numpy()
    r = np.diff(np.log(sb))
    days = np.array(common[1:], dtype="datetime64[D]")
    raw = []
    for day in dm.dates["train"][[0, 100, -1]]:
        t = int(np.searchsorted(days, day))
        raw.append(np.log(np.sqrt(np.mean(r[t + 1 : t + 4] ** 2)) + 1e-6))
    ys = dm.splits["train"].labels[[0, 100, -1], 0].numpy()
    # standardisation is affine: compare differences and ratios
    assert (ys[1] - ys[0]) / (ys[2] - ys[0]) == pytest.approx((raw[1] - raw[0]) / (raw[2] - raw[0]), rel=1e-3)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="GSK.csv.gz, NVS.csv.gz, WBA.csv.gz"):
        StocksDataModule(sector="health", settings=DataSettings(root=str(DATA_ROOT))).setup()
    with pytest.warns(UserWarning, match="skipping tickers without data: GSK, NVS, WBA"):
        d = StocksDataModule(tickers=["MRK", "PFE", "GSK", "NVS", "WBA"], on_missing="skip", settings=DataSettings(root=str(DATA_ROOT)))
        d.setup()
    assert d.schema.names == ["MRK", "PFE"]
    for t in ("MCD", "YUM"):
        shutil.copy(DATA_ROOT / "stocks" / f"{t}.csv.gz", tmp_path / f"{t}.csv.gz")
    with gzip.open(tmp_path / "YUM.csv.gz", "wt") as f:
        f.write("Date,High,Low,Open,Close,Volume,Adj Close\n2000-01-03,1,1,1,1,1,oops\n")
    with pytest.raises(DataError, match="YUM.csv.gz: malformed"):
        StocksDataModule(tickers=["MCD", "YUM"], settings=DataSettings(root=str(tmp_path))).setup()
    d = StocksDataModule(tickers=["YUM"], target="MCD", window=4, settings=DataSettings(root=str(DATA_ROOT)))
    d.setup()
    assert d.schema.names == ["YUM"] and d.target_ticker == "MCD"  # the target need not be an input
    with pytest.raises(ConfigError, match="data.sector"):
        StocksDataModule(sector="energy")


def test_regression_fit_on_stocks_beats_predicting_the_training_mean(tmp_path: Path) -> None:
    from mmrefine.config import load_config
    from mmrefine.training.engine import fit

    repo = Path(__file__).resolve().parents[2]
    cfg = load_config(repo / "configs" / "stocks_fnb.yaml", [
        f"run_dir={tmp_path / 'run'}", f"data.root={DATA_ROOT}", "data.sector=null", "data.tickers=[MCD, SBUX, YUM, DRI]",
        "trainer.max_epochs=3", "trainer.progress_bar=false",
    ])
    res = fit(cfg)
    baseline = float((res.datamodule.splits["test"].labels ** 2).mean())  # MSE of predicting the training mean (0)
    assert res.test["test/mse"] < baseline
