"""docs/own_data.md: route 3 (a registered DataModule of one's own, loaded with --import) as
written, and route 2's committed config on a slice of the real table."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mmrefine.cli import main
from mmrefine.config import load_config
from tests.conftest import DATA_ROOT, requires_data

REPO = Path(__file__).resolve().parents[1]
DOC = (REPO / "docs" / "own_data.md").read_text()


def block_after(marker: str, lang: str) -> str:
    m = re.search(re.escape(marker) + r"\s*\n\s*```" + lang + r"\n(.*?)```", DOC, re.S)
    assert m, f"no {lang} block after {marker} in docs/own_data.md"
    return m.group(1)


def test_route_3_own_datamodule_with_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "my_data.py").write_text(block_after("`my_data.py`:", "python"))
    (tmp_path / "my_data.yaml").write_text(block_after("`my_data.yaml`:", "yaml"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    command = block_after("`my_data.yaml`:", "yaml") and re.search(r"mmrefine (--import my_data fit -c my_data.yaml)", DOC)
    assert command
    assert main(command.group(1).split() + ["--set", "trainer.progress_bar=false"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{\n"):])["test"]["test/acc"] > 0.9  # noise 0.5 on 8 channels: an easy task, learnt
    assert (tmp_path / "runs" / "two_sensors" / "model.safetensors").is_file()


@requires_data("clothing_reviews")
def test_route_2_table_config_on_a_slice_of_the_real_table(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = load_config(REPO / "configs" / "clothing_table.yaml")  # the committed config is valid as it stands
    assert cfg.data["name"] == "table"
    doc_yaml = yaml.safe_load(block_after("`configs/clothing_table.yaml`:", "yaml"))
    assert doc_yaml["data"] == {k: cfg.data[k] for k in doc_yaml["data"]}  # the doc shows the config as committed
    for split in ("train", "test"):
        pd.read_csv(DATA_ROOT / "clothing_reviews" / f"{split}.csv", nrows=600).to_csv(tmp_path / f"{split}.csv", index=False)
    assert main(["fit", "-c", str(REPO / "configs" / "clothing_table.yaml"), "--run-dir", str(tmp_path / "run"),
                 "--set", f"data.path={tmp_path / 'train.csv'}", "--set", f"data.test_path={tmp_path / 'test.csv'}",
                 "--set", f"data.root={DATA_ROOT}", "--set", "trainer.max_epochs=8", "--set", "trainer.progress_bar=false"]) == 0
    out = capsys.readouterr().out
    test = json.loads(out[out.index("{\n"):])["test"]
    assert test["test/f1_macro"] > 0.6  # the majority class alone scores about 0.45
