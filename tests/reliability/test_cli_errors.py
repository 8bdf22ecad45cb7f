"""Every user mistake is one line, `mmrefine: error: ...`, exit code 2, and
leaves nothing behind; component settings are type-checked by key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mmrefine.cli import main
from mmrefine.core.errors import ConfigError
from mmrefine.training.builders import build_datamodule, build_model, build_task
from tests.conftest import tiny_config

SMALL = {
    "data": {"name": "mfeat", "views": ["fou", "zer"]},
    "model": {"default_encoder": {"name": "mlp", "hidden": [16], "out_dim": 8}},
    "trainer": {"max_epochs": 1, "progress_bar": False, "accelerator": "cpu", "devices": 1, "num_sanity_val_steps": 0},
}


def write(path: Path, data: dict | str) -> Path:
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mmrefine: error: ") and "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"data": {"standardize": "false"}}, "data.standardize: expected true/false, got 'false'"),
        ({"data": {"batch_size": "64"}}, "data.batch_size: expected an integer, got '64'"),
        ({"model": {"fusion": {"name": "gmu", "out_dim": "8"}}}, "model.fusion.out_dim: expected an integer"),
        ({"model": {"encoders": {"fou": {"name": "mlp", "hidden": "32"}}}}, "model.encoders.fou.hidden: expected a list"),
        ({"model": {"refiner": {"gamma": "high"}}}, "model.refiner.gamma: 'high' matches none of"),
        ({"task": {"name": "classification", "label_smoothing": "0.1"}}, "task.label_smoothing: expected a number"),
    ],
)
def test_component_settings_are_type_checked_by_key(tmp_path: Path, over: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", "\\(").replace(")", "\\)")):
        cfg = tiny_config(tmp_path, **over)
        dm = build_datamodule(cfg)
        build_model(cfg, dm.schema, build_task(cfg, dm))


def test_a_base_cycle_is_one_line(tmp_path: Path, capsys) -> None:
    write(tmp_path / "a.yaml", "base: b.yaml\n")
    write(tmp_path / "b.yaml", "base: a.yaml\n")
    assert "base: cycle in config files" in one_line_error(capsys, ["fit", "-c", str(tmp_path / "a.yaml")])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.max_epochs=[1", "is not valid YAML"),
        ("trainer.max_epochs=-3", "trainer.max_epochs must be >= 1, got -3"),
        ("optim.lr=-0.1", "optim.lr must be >= 0, got -0.1"),
        ("pretrain.epochs=-1", "pretrain.epochs must be >= 0"),
        ("optim.schedule=cosin", "optim.schedule must be cosine, linear or constant"),
    ],
)
def test_bad_overrides_are_one_line(tmp_path: Path, capsys, override: str, message: str) -> None:
    cfg = write(tmp_path / "c.yaml", SMALL)
    assert message in one_line_error(capsys, ["fit", "-c", str(cfg), "--run-dir", str(tmp_path / "r"), "--set", override])
    assert not (tmp_path / "r").exists()


def test_an_invalid_config_writes_nothing(tmp_path: Path, capsys) -> None:
    cfg = write(tmp_path / "c.yaml", SMALL)
    run = tmp_path / "r"
    one_line_error(capsys, ["fit", "-c", str(cfg), "--run-dir", str(run), "--set", "model.fusion.name=gmux"])
    assert not (run / "config.yaml").exists() and not (run / "train").exists()
    assert main(["fit", "-c", str(cfg), "--run-dir", str(run)]) == 0  # a plain fit is not blocked


def test_an_unwritable_run_dir_is_one_line(tmp_path: Path, capsys) -> None:
    cfg = write(tmp_path / "c.yaml", SMALL)
    (tmp_path / "file").write_text("x")
    assert "cannot write to" in one_line_error(capsys, ["fit", "-c", str(cfg), "--run-dir", str(tmp_path / "file" / "r")])


def test_truncated_last_checkpoint_on_resume_and_export_into_a_new_folder(tmp_path: Path, capsys) -> None:
    cfg = write(tmp_path / "c.yaml", {**SMALL, "trainer": {**SMALL["trainer"], "max_epochs": 2}})
    run = tmp_path / "r"
    assert main(["fit", "-c", str(cfg), "--run-dir", str(run)]) == 0
    capsys.readouterr()
    best = next((run / "train" / "checkpoints").glob("best-*.ckpt"))
    out = tmp_path / "new" / "folder" / "model.safetensors"
    assert main(["export", "-c", str(cfg), "--ckpt", str(best), "--out", str(out)]) == 0 and out.is_file()
    (run / "metrics.json").unlink()  # pretend the run was interrupted
    last = run / "train" / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    assert "cannot read checkpoint" in one_line_error(capsys, ["fit", "-c", str(cfg), "--run-dir", str(run), "--resume"])
    missing = tmp_path / "nowhere.ckpt"
    assert "checkpoint not found" in one_line_error(capsys, ["test", "-c", str(cfg), "--ckpt", str(missing)])
