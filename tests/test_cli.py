import json
import re
from pathlib import Path

import pytest
import yaml

from mmrefine.cli import main
from mmrefine.experiments.demo import run_demo

REPO = Path(__file__).resolve().parents[1]

SMALL = {
    "data": {"name": "mfeat", "views": ["fou", "zer"]},
    "model": {"default_encoder": {"name": "mlp", "hidden": [32], "out_dim": 16}, "fusion": {"name": "gmu", "out_dim": 16}, "refiner": {}},
    "trainer": {"max_epochs": 2, "progress_bar": False, "accelerator": "cpu", "devices": 1},
}


def write(tmp: Path, data: dict) -> Path:
    p = tmp / "cfg.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_unknown_config_key_is_rejected_by_name(tmp_path: Path, capsys) -> None:
    cfg = write(tmp_path, {**SMALL, "trainer": {"max_epoch": 2}})
    assert main(["fit", "-c", str(cfg), "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'trainer.max_epoch'" in err and "did you mean 'max_epochs'" in err
    assert not (tmp_path / "r").exists()  # nothing ran
    assert main(["fit", "-c", str(write(tmp_path, SMALL)), "--set", "refiner.gama=0.2"]) == 2
    assert "refiner.gama" in capsys.readouterr().err


def test_fit_test_predict_export_round_trip(tmp_path: Path, capsys) -> None:
    cfg = str(write(tmp_path, SMALL))
    run = str(tmp_path / "run")
    assert main(["fit", "-c", cfg, "--run-dir", run]) == 0
    fitted = json.loads(capsys.readouterr().out)
    ckpt = fitted["best_checkpoint"]
    assert main(["test", "-c", cfg, "--run-dir", run, "--ckpt", ckpt]) == 0
    assert json.loads(capsys.readouterr().out)["test/acc"] == pytest.approx(fitted["test"]["test/acc"])
    assert main(["validate", "-c", cfg, "--run-dir", run, "--ckpt", ckpt]) == 0
    assert "val/acc" in json.loads(capsys.readouterr().out)
    assert main(["predict", "-c", cfg, "--run-dir", run, "--ckpt", ckpt, "--out", str(tmp_path / "p.csv")]) == 0
    assert (tmp_path / "p.csv").is_file()
    assert main(["export", "-c", cfg, "--run-dir", run, "--ckpt", ckpt, "--out", str(tmp_path / "m.safetensors")]) == 0
    assert (tmp_path / "m.safetensors").stat().st_size > 0
    # a second plain fit into the same run dir is refused; --resume finishes the finished run at once
    assert main(["fit", "-c", cfg, "--run-dir", run]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["fit", "-c", cfg, "--run-dir", run, "--resume"]) == 0


def test_demo_writes_table_report_and_plot(tmp_path: Path, capfd) -> None:
    out = tmp_path / "demo"
    rows = run_demo(REPO / "configs" / "demo.yaml", out, seeds=[0], epochs=1)
    assert [r["variant"] for r in rows] == ["concat", "concat+refiner", "gmu", "gmu+refiner", "gmu+profusion"]
    captured = capfd.readouterr()  # the sweep's worker processes write to the same file descriptors
    printed = captured.out
    assert "GPU available" not in captured.err and "Tip:" not in captured.err, captured.err[:500]  # no Lightning banner per run
    assert "gmu+refiner" in printed and "no fou" in printed and "step 1 -> step 2" in printed
    assert re.search(r"5 runs, \d+ s on this machine: \d+ cores, torch threads \d+, fp32 matmul \d+ GFLOP/s", printed)
    report = (out / "report.md").read_text()
    assert "| gmu+refiner |" in report and "missing_views.png" in report and "p vs concat" in report
    assert "GFLOP/s" in report
    assert (out / "missing_views.png").stat().st_size > 1000
    records = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert len(records) == 5 and set(records[0]["missing"]) == {"fou", "fac", "kar", "pix", "zer", "mor"}
    profusion = next(r for r in records if r["variant"] == "gmu+profusion")
    assert "| gmu+profusion | " in report and list(profusion["probes"]) == ["1", "2"]
