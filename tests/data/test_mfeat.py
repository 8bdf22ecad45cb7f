from pathlib import Path

import numpy as np
import pytest

from mmrefine.core.errors import ConfigError, DataError
from mmrefine.data.mfeat import VIEWS, MFeatDataModule, read_bundle, read_mfeat_csv, stratified_split
from mmrefine.data.settings import DataSettings
from tests.conftest import DATA_ROOT, requires_data


def test_bundle_counts_and_balance() -> None:
    data, labels = read_bundle()
    assert set(data) == set(VIEWS)
    for v, d in VIEWS.items():
        assert data[v].shape == (2000, d)
    assert np.bincount(labels).tolist() == [200] * 10


@requires_data("mfeat")
def test_bundle_equals_upstream_csvs() -> None:
    bundled, lb = read_bundle()
    csv, lc = read_mfeat_csv(DATA_ROOT / "mfeat")
    assert np.array_equal(lb, lc)
    for v in VIEWS:
        np.testing.assert_allclose(bundled[v], csv[v], rtol=1e-6, atol=1e-6)


def test_datamodule_split_is_stratified_disjoint_and_standardised() -> None:
    dm = MFeatDataModule(views=["fou", "mor"])
    s = dm.splits
    assert [len(s[k]) for k in ("train", "val", "test")] == [1200, 400, 400]
    assert dm.schema.names == ["fou", "mor"] and dm.num_outputs == 10
    for k in s:
        assert np.bincount(s[k].labels.numpy()).tolist() == [len(s[k]) // 10] * 10
    idx = stratified_split(read_bundle(["mor"])[1], 0.2, 0.2, seed=0)
    assert not set(idx["train"]) & set(idx["test"]) and not set(idx["train"]) & set(idx["val"])
    assert not set(idx["val"]) & set(idx["test"]) and sum(len(v) for v in idx.values()) == 2000
    tr = s["train"].inputs["mor"]
    assert tr.mean(0).abs().max() < 1e-4 and (tr.std(0) - 1).abs().max() < 1e-2


def test_labelled_fraction_is_stratified() -> None:
    dm = MFeatDataModule(settings=DataSettings(labelled_fraction=0.1))
    lab = dm.labelled_train()
    assert len(lab) == 120 and np.bincount(lab.labels.numpy()).tolist() == [12] * 10
    assert len(dm.pretrain_dataset()) == 1200 and dm.pretrain_dataset().labels is None


def test_unknown_view_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown view"):
        MFeatDataModule(views=["fou", "xyz"])


def _write(tmp: Path, view: str, text: str) -> None:
    (tmp / f"mfeat-{view}.csv").write_text(text)


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="mfeat-mor.csv"):
        read_mfeat_csv(tmp_path, ["mor"])


def test_malformed_csv(tmp_path: Path) -> None:
    _write(tmp_path, "mor", "a,b,c,d,e,f,g\n1,2,3,x,5,6,0\n")
    with pytest.raises(DataError, match="malformed CSV"):
        read_mfeat_csv(tmp_path, ["mor"])
    _write(tmp_path, "mor", "a,b,c\n1,2,0\n")
    with pytest.raises(DataError, match="expected 6 features"):
        read_mfeat_csv(tmp_path, ["mor"])
    _write(tmp_path, "mor", "a,b,c,d,e,f,g\n")
    with pytest.raises(DataError, match="no data rows"):
        read_mfeat_csv(tmp_path, ["mor"])
