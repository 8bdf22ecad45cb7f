"""Bad data files are errors that name the file, line and column; missing
cells can instead mark a modality absent; `data check` verifies contents."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
import torch

from mmrefine.cli import main
from mmrefine.core.errors import DataError
from mmrefine.data.mfeat import read_mfeat_csv
from mmrefine.data.mosi import MOSIDataModule
from mmrefine.data.settings import DataSettings
from tests.conftest import DATA_ROOT, requires_data


def mosi_copy(tmp_path: Path) -> Path:
    shutil.copytree(DATA_ROOT / "mosi", tmp_path / "mosi")
    return tmp_path / "mosi"


def edit_cell(path: Path, line: int, column: int, value: str) -> None:
    rows = path.read_text().splitlines()
    cells = rows[line - 1].split(",")
    cells[column - 1] = value
    rows[line - 1] = ",".join(cells)
    path.write_text("\n".join(rows) + "\n")


@requires_data("mosi")
def test_a_label_mismatch_names_the_line_and_both_files(tmp_path: Path) -> None:
    d = mosi_copy(tmp_path)
    path = d / "text" / "text_train0.csv"
    label = path.read_text().splitlines()[16].rsplit(",", 1)[1]
    edit_cell(path, 17, 101, "0" if float(label.strip("\"")) == 1 else "1")
    with pytest.raises(DataError, match="line 17: the label is .* in .*text_train0.csv but .* in .*audio_train0.csv"):
        MOSIDataModule(settings=DataSettings(root=str(tmp_path))).setup()


@requires_data("mosi")
def test_a_blank_or_nan_cell_names_file_line_and_column_before_standardising(tmp_path: Path) -> None:
    d = mosi_copy(tmp_path)
    edit_cell(d / "video" / "video_test0.csv", 5, 3, "")
    with pytest.raises(DataError, match="video_test0.csv: line 5, column 3: missing or not finite .*data.missing: absent"):
        MOSIDataModule(settings=DataSettings(root=str(tmp_path))).setup()
    edit_cell(d / "video" / "video_test0.csv", 5, 3, "abc")
    with pytest.raises(DataError, match="video_test0.csv: line 5, column 3: non-numeric value 'abc'"):
        MOSIDataModule(settings=DataSettings(root=str(tmp_path))).setup()


@requires_data("mosi")
def test_missing_cells_can_mark_the_modality_absent(tmp_path: Path, caplog) -> None:
    d = mosi_copy(tmp_path)
    for line in (5, 9):
        edit_cell(d / "video" / "video_test0.csv", line, 3, "")
    edit_cell(d / "audio" / "audio_train0.csv", 2, 1, "nan")
    dm = MOSIDataModule(missing="absent", settings=DataSettings(root=str(tmp_path)))
    test = dm.splits["test"]
    assert (~test.mask["video"]).nonzero().flatten().tolist() == [4, 8]
    assert test.mask["text"].all() and test.mask["audio"].all()
    assert torch.isfinite(test.inputs["video"]).all() and (test.inputs["video"][[4, 8]] == 0).all()
    assert "video test: 2" in caplog.text and "audio train: 1" in caplog.text
    clean = MOSIDataModule(settings=DataSettings(root=str(DATA_ROOT))).splits["test"]
    # statistics come from the present rows only, so other rows are standardised as before (up to one row's weight)
    assert torch.allclose(test.inputs["text"], clean.inputs["text"])


def test_mfeat_nan_is_named_by_line_and_column(tmp_path: Path) -> None:
    rows = ["f1,f2,f3,f4,f5,f6,label"] + [",".join(["0.5"] * 6 + [str(i % 10)]) for i in range(5)]
    for view, width in {"mor": 6}.items():
        (tmp_path / f"mfeat-{view}.csv").write_text("\n".join(rows) + "\n")
    edit_cell(tmp_path / "mfeat-mor.csv", 4, 2, "nan")
    with pytest.raises(DataError, match="mfeat-mor.csv: line 4, column 2: missing or not finite"):
        read_mfeat_csv(tmp_path, ["mor"])


@requires_data("mnist")
def test_data_check_verifies_mnist_contents(tmp_path: Path, capsys) -> None:
    shutil.copytree(DATA_ROOT / "mnist", tmp_path / "mnist")
    assert main(["data", "check", "mnist", "--data-root", str(tmp_path)]) == 0
    (tmp_path / "mnist" / "t10k-labels.idx1-ubyte.gz").write_bytes(gzip.compress(b"not mnist"))
    assert main(["data", "check", "mnist", "--data-root", str(tmp_path)]) == 2
    assert "t10k-labels.idx1-ubyte.gz (corrupt: SHA-256 differs)" in capsys.readouterr().err


@requires_data("fsdd")
def test_data_check_names_a_corrupt_wav(tmp_path: Path, capsys) -> None:
    shutil.copytree(DATA_ROOT / "fsdd", tmp_path / "fsdd")
    victim = tmp_path / "fsdd" / "recordings" / "3_theo_7.wav"
    victim.write_bytes(victim.read_bytes()[: len(victim.read_bytes()) // 2])
    assert main(["data", "check", "fsdd", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "3_theo_7.wav (corrupt: truncated WAV" in err
