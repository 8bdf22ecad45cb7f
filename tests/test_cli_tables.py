"""The CLI on a user's table and with a user's own registered dataset (--import)."""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mmrefine.cli import main
from tests.predictors.test_table_predictor import shop


def test_fit_and_predict_a_table_keeping_the_id_column(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    shop().to_csv(tmp_path / "train.csv", index=False)
    shop(100, seed=1).to_csv(tmp_path / "test.csv", index=False)
    new = shop(30, seed=2).drop(columns="label")
    new.to_csv(tmp_path / "new.csv", index=False)
    run = tmp_path / "run"
    assert main(["fit", "--table", str(tmp_path / "train.csv"), "--label", "label", "--fusion", "concat", "--epochs", "3",
                 "--test", str(tmp_path / "test.csv"), "--run-dir", str(run)]) == 0
    captured = capsys.readouterr().out
    printed = json.loads(captured[captured.index("{\n"):])
    assert set(printed["test"]) >= {"accuracy", "f1_macro", "roc_auc"}
    assert json.loads((run / "test_metrics.json").read_text()) == printed["test"]
    assert main(["predict", "--run-dir", str(run), "--table", str(tmp_path / "new.csv"), "--out", str(tmp_path / "p.csv")]) == 0
    preds = pd.read_csv(tmp_path / "p.csv")
    assert list(preds.columns) == ["id", "prediction", "p_keep", "p_return"]  # the row id column is kept
    assert preds["id"].tolist() == new["id"].tolist() and set(preds["prediction"]) <= {"keep", "return"}
    # a second fit into the same folder must not silently replace the first
    assert main(["fit", "--table", str(tmp_path / "train.csv"), "--label", "label", "--run-dir", str(run)]) == 2
    assert "already holds a fitted table predictor" in capsys.readouterr().err


def test_a_failed_table_fit_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    shop().to_csv(tmp_path / "train.csv", index=False)
    assert main(["fit", "--table", str(tmp_path / "train.csv"), "--label", "target", "--run-dir", str(tmp_path / "run")]) == 2
    assert "label column 'target' is not in the table" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_table_dataset_in_a_config(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    shop().to_csv(tmp_path / "train.csv", index=False)
    shop(100, seed=1).to_csv(tmp_path / "test.csv", index=False)
    cfg = {"run_dir": str(tmp_path / "run"), "data": {"name": "table", "path": str(tmp_path / "train.csv"), "label": "label",
                                                      "test_path": str(tmp_path / "test.csv"), "batch_size": 32},
           "model": {"fusion": {"name": "concat"}, "head_hidden": [32]}, "optim": {"lr": 0.003}, "trainer": {"max_epochs": 10, "progress_bar": False}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["fit", "-c", str(tmp_path / "c.yaml")]) == 0
    assert json.loads(capsys.readouterr().out)["test"]["test/acc"] > 0.85  # the rule is learnt (majority class: 0.6)


PLUGIN = '''
import torch
from mmrefine.data import DATASETS, MultimodalDataModule, TensorMultimodalDataset


@DATASETS.register("my_pairs")
class MyPairs(MultimodalDataModule):
    """Two noisy views of a binary label."""

    def load(self):
        g = torch.Generator().manual_seed(0)
        def split(n):
            y = torch.randint(0, 2, (n,), generator=g)
            views = {m: y[:, None].float() + 0.5 * torch.randn(n, 4, generator=g) for m in ("left", "right")}
            return TensorMultimodalDataset(views, y)
        return {"train": split(256), "val": split(64), "test": split(64)}

    @property
    def num_outputs(self):
        return 2
'''


def test_a_users_registered_dataset_trains_from_the_cli_with_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "my_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = {"run_dir": str(tmp_path / "run"), "data": {"name": "my_pairs"}, "trainer": {"max_epochs": 3, "progress_bar": False}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["fit", "-c", str(tmp_path / "c.yaml"), "--run-dir", str(tmp_path / "r0")]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'my_pairs'" in err and "--import MODULE" in err
    assert main(["--import", "my_plugin", "fit", "-c", str(tmp_path / "c.yaml")]) == 0
    assert json.loads(capsys.readouterr().out)["test"]["test/acc"] > 0.8
    assert main(["--import", "no_such_module", "fit", "-c", str(tmp_path / "c.yaml")]) == 2
    assert "--import no_such_module" in capsys.readouterr().err
