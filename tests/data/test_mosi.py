import shutil
from pathlib import Path

import numpy as np
import pytest

from mmrefine.core.errors import ConfigError, DataError
from mmrefine.data.mosi import MOSIDataModule
from mmrefine.data.settings import DataSettings
from tests.conftest import DATA_ROOT, requires_data

pytestmark = requires_data("mosi")


def test_counts_shapes_balance_and_no_video_leak() -> None:
    dm = MOSIDataModule(settings=DataSettings(root=str(DATA_ROOT)))
    s = dm.splits
    assert len(s["train"]) + len(s["val"]) == 1447 and len(s["test"]) == 752
    assert {m: tuple(x.shape[1:]) for m, x in s["test"].inputs.items()} == {"text": (100,), "audio": (73,), "video": (100,)}
    for split in s:
        frac = s[split].labels.float().mean().item()
        assert 0.35 < frac < 0.65, (split, frac)  # both sentiments well represented
    v = dm.videos
    assert len(np.unique(v["train"])) == 52 and len(np.unique(v["val"])) == 10 and len(np.unique(v["test"])) == 31
    assert not set(v["train"]) & set(v["val"]) and not set(v["train"]) & set(v["test"]) and not set(v["val"]) & set(v["test"])
    assert len(dm.transcripts["test"]) == 752 and all(isinstance(t, str) and t for t in dm.transcripts["test"][:5])


def test_modality_subset_and_errors(tmp_path: Path) -> None:
    assert MOSIDataModule(modalities=["audio"], settings=DataSettings(root=str(DATA_ROOT))).schema.names == ["audio"]
    with pytest.raises(ConfigError, match="unknown \\['speech'\\]"):
        MOSIDataModule(modalities=["speech"], settings=DataSettings(root=str(DATA_ROOT)))
    copy = tmp_path / "mosi"
    shutil.copytree(DATA_ROOT / "mosi", copy)
    (copy / "audio" / "audio_test0.csv").unlink()
    with pytest.raises(DataError, match="missing CMU-MOSI file .*audio_test0.csv"):
        MOSIDataModule(settings=DataSettings(root=str(tmp_path))).setup()
    shutil.copy(DATA_ROOT / "mosi" / "audio" / "audio_test0.csv", copy / "audio" / "audio_test0.csv")
    lines = (copy / "video" / "video_train0.csv").read_text().splitlines()
    (copy / "video" / "video_train0.csv").write_text("\n".join([lines[0].rsplit(",", 3)[0]] + lines[1:]) + "\n")
    with pytest.raises(DataError, match="video_train0.csv"):
        MOSIDataModule(settings=DataSettings(root=str(tmp_path))).setup()
