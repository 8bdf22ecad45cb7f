"""The .npy AV-MNIST loader on the shipped format sample (which has no training
audio: the tests add a stand-in file to make a complete layout)."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from mmrefine.core.errors import ConfigError, DataError
from mmrefine.data.avmnist import AVMNISTNpyDataModule
from mmrefine.data.settings import DataSettings
from tests.conftest import DATA_ROOT, requires_data

pytestmark = requires_data("avmnist_multibench_sample")


def layout(tmp: Path) -> Path:
    d = tmp / "avmnist"
    shutil.copytree(DATA_ROOT / "avmnist_multibench_sample", d)
    aud = np.load(d / "aud_test.npy")
    np.save(d / "aud_train.npy", np.concatenate([aud, aud, aud]))  # 600 stand-in spectrograms
    return d


def test_sample_layout_loads_with_the_published_shapes(tmp_path: Path) -> None:
    d = layout(tmp_path)
    with pytest.warns(UserWarning, match="10000 labels for 200 samples"):
        dm = AVMNISTNpyDataModule(val_size=100, settings=DataSettings(root=str(d)))
        s = dm.splits
    assert [len(s[k]) for k in ("train", "val", "test")] == [500, 100, 200]
    assert dm.schema.modalities["image"].shape == (784,) and dm.schema.modalities["audio"].shape == (112, 112)
    assert 0.0 <= s["test"].inputs["audio"].min() and s["test"].inputs["audio"].max() <= 1.0
    np.testing.assert_array_equal(s["test"].labels.numpy(), np.load(d / "test_labels.npy")[:200])
    np.testing.assert_array_equal(s["val"].labels.numpy(), np.load(d / "train_labels.npy")[500:])


@pytest.mark.filterwarnings("ignore:.*labels for")
def test_missing_and_corrupt_files_are_named(tmp_path: Path) -> None:
    d = tmp_path / "s"
    shutil.copytree(DATA_ROOT / "avmnist_multibench_sample", d)
    with pytest.raises(DataError, match="missing AV-MNIST file .*aud_train.npy"):
        AVMNISTNpyDataModule(settings=DataSettings(root=str(d))).setup()
    d = layout(tmp_path)
    (d / "img_test.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataError, match="img_test.npy: not a readable .npy file"):
        AVMNISTNpyDataModule(val_size=100, settings=DataSettings(root=str(d))).setup()
    d2 = layout(tmp_path / "x")
    with pytest.raises(ConfigError, match="val_size"):
        AVMNISTNpyDataModule(settings=DataSettings(root=str(d2))).setup()  # 5000 > 600 samples
