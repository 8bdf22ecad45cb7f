"""Runs lose nothing: unstarted runs restart, last.ckpt is fresh and whole, a
finished run is not retrained, two fits cannot share a directory, an unwritable
directory fails before training, checkpoints load strictly and only onto the
data they were trained on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch

from mmrefine.core.errors import CheckpointMismatchError, ConfigError, RunError
from mmrefine.experiments.sweep import read_records, run_sweep
from mmrefine.training.engine import evaluate, fit, read_checkpoint
from mmrefine.training.logs import read_logs
from mmrefine.training.rundir import AtomicCheckpoint
from tests.conftest import tiny_config
from tests.training.test_engine import Interrupt as Crash  # raises "simulated crash" at an epoch's start


def last(cfg) -> dict:
    return read_checkpoint(Path(cfg.run_dir) / "train" / "checkpoints" / "last.ckpt")


def test_a_run_killed_before_its_first_checkpoint_restarts(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, trainer={"max_epochs": 2})
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(cfg, callbacks=[Crash(0)], test=False)
    assert (Path(cfg.run_dir) / "train" / "logs").is_dir() and not (Path(cfg.run_dir) / "train" / "checkpoints" / "last.ckpt").exists()
    assert fit(cfg, resume=True, test=False).val["val/acc"] > 0.5  # --resume starts it fresh
    other = tiny_config(tmp_path / "o", trainer={"max_epochs": 1})
    with pytest.raises(RuntimeError):
        fit(other, callbacks=[Crash(0)], test=False)
    fit(other, test=False)  # a plain fit is allowed too: nothing was checkpointed


def test_a_sweep_killed_before_a_runs_first_checkpoint_resumes(tmp_path: Path) -> None:
    (tmp_path / "exp.yaml").write_text(
        "data: {name: mfeat, views: [fou, kar]}\n"
        "model: {default_encoder: {name: mlp, hidden: [16], out_dim: 8}}\n"
        "trainer: {max_epochs: 1, accelerator: cpu, devices: 1, num_sanity_val_steps: 0}\n")
    (tmp_path / "sweep.yaml").write_text("experiment: exp.yaml\nseeds: [0]\nmissing: false\nvariants: {concat: {}}\n")
    out = tmp_path / "out"
    cfg = tiny_config(tmp_path, run_dir=str(out / "runs" / "concat" / "seed0"))
    with pytest.raises(RuntimeError):
        fit(cfg, callbacks=[Crash(0)], test=False)
    records = run_sweep(tmp_path / "sweep.yaml", out)
    assert [(r["variant"], r["seed"]) for r in records] == [("concat", 0)]


def test_last_checkpoint_is_written_every_epoch_when_asked(tmp_path: Path) -> None:
    # monitoring accuracy with mode 'min' makes epoch 0 the best: last.ckpt must still move on
    cfg = tiny_config(tmp_path, trainer={"max_epochs": 4, "monitor": "val/acc", "mode": "min", "last_checkpoint_every_s": 0})
    res = fit(cfg, test=False)
    assert res.best_checkpoint.endswith("best-000.ckpt")
    assert last(cfg)["epoch"] == 3
    assert not list((Path(cfg.run_dir) / "train" / "checkpoints").glob("*.tmp*"))


def test_resume_after_a_kill_lists_every_epoch_once(tmp_path: Path) -> None:
    over = {"trainer": {"max_epochs": 4, "monitor": "val/acc", "mode": "min", "last_checkpoint_every_s": 0}}
    full = fit(tiny_config(tmp_path / "a", **over), test=False)
    cfg = tiny_config(tmp_path / "b", **over)
    with pytest.raises(RuntimeError):
        fit(cfg, callbacks=[Crash(3)], test=False)
    assert last(cfg)["epoch"] == 2  # not the best (epoch 0): the newest
    fit(cfg, resume=True, test=False)
    logs, ref = read_logs(Path(cfg.run_dir) / "train"), read_logs(full.run_dir / "train")
    for col in ("val/acc", "train/loss_epoch"):
        epochs = logs.dropna(subset=[col])["epoch"].astype(int).tolist()
        assert epochs == ref.dropna(subset=[col])["epoch"].astype(int).tolist()
        assert epochs[:4] == [0, 1, 2, 3]


def test_last_checkpoint_when_due_resumes_to_the_same_run(tmp_path: Path) -> None:
    """By default (epochs far shorter than ``last_checkpoint_every_s``) last.ckpt is written with
    each best checkpoint and after the final epoch only; a run killed in between resumes from
    it, replays the epochs since, and ends with the uninterrupted run's weights, logs and files
    (no best checkpoint is newer than last.ckpt, so none is written twice)."""
    # accuracy with mode 'min' makes epoch 0 the only best one
    over = {"trainer": {"max_epochs": 4, "monitor": "val/acc", "mode": "min"}}
    full = fit(tiny_config(tmp_path / "a", **over), test=False)
    assert full.best_checkpoint.endswith("best-000.ckpt")
    assert last(tiny_config(tmp_path / "a", **over))["epoch"] == 3  # the final epoch is always written
    cfg = tiny_config(tmp_path / "b", **over)
    with pytest.raises(RuntimeError):
        fit(cfg, callbacks=[Crash(3)], test=False)
    assert last(cfg)["epoch"] == 0  # written with the best, not after epochs 1 and 2
    again = fit(cfg, resume=True, test=False)
    files = sorted(p.name for p in (Path(cfg.run_dir) / "train" / "checkpoints").iterdir())
    assert files == sorted(p.name for p in (full.run_dir / "train" / "checkpoints").iterdir())
    a, b = last(tiny_config(tmp_path / "a", **over)), last(cfg)
    assert a["global_step"] == b["global_step"] and again.best_checkpoint.endswith(Path(full.best_checkpoint).name)
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    epochs = read_logs(Path(cfg.run_dir) / "train").dropna(subset=["train/loss_epoch"])["epoch"].astype(int).tolist()
    assert epochs == [0, 1, 2, 3]


def test_early_stopping_writes_the_last_epoch(tmp_path: Path) -> None:
    # accuracy with mode 'min': epoch 0 is the best, patience 1 stops after epoch 1
    cfg = tiny_config(tmp_path, trainer={"max_epochs": 6, "monitor": "val/acc", "mode": "min", "patience": 1})
    fit(cfg, test=False)
    assert last(cfg)["epoch"] == 1


def test_resume_on_a_finished_run_trains_nothing(tmp_path: Path, caplog) -> None:
    cfg = tiny_config(tmp_path, trainer={"max_epochs": 2})
    first = fit(cfg)
    step = last(cfg)["global_step"]
    mtime = (Path(cfg.run_dir) / "train" / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    again = fit(cfg, resume=True)
    assert again.test == first.test and again.val == first.val
    assert last(cfg)["global_step"] == step
    assert (Path(cfg.run_dir) / "train" / "checkpoints" / "last.ckpt").stat().st_mtime_ns == mtime
    assert "already finished" in caplog.text
    assert again.trainer.test(again.module, datamodule=again.datamodule, verbose=False)[0]["test/acc"] == pytest.approx(first.test["test/acc"])


def test_a_failed_save_stops_training_and_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch) -> None:
    cfg = tiny_config(tmp_path, trainer={"max_epochs": 5})
    real = L.Trainer.save_checkpoint
    calls = {"n": 0}

    def flaky(self, filepath, weights_only=False, storage_options=None):  # noqa: ANN001
        calls["n"] += 1
        if calls["n"] > 2:  # epoch 0 saved best + last; the first save of epoch 1 fails half-written
            Path(filepath).write_bytes(b"partial")
            raise OSError(28, "No space left on device")
        return real(self, filepath, weights_only, storage_options)

    monkeypatch.setattr(L.Trainer, "save_checkpoint", flaky)
    with pytest.raises(OSError, match="No space left"):
        fit(cfg, test=False)
    assert calls["n"] == 3  # it stopped at the first failure, not after all epochs
    assert last(cfg)["epoch"] == 0  # the previous last.ckpt is whole


def test_an_unwritable_run_directory_fails_before_training(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cfg = tiny_config(tmp_path, run_dir=str(blocker / "run"))
    t0 = time.perf_counter()
    with pytest.raises(RunError, match="cannot write to"):
        fit(cfg)
    assert time.perf_counter() - t0 < 10


def test_two_fits_cannot_share_a_run_directory(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import time\nfrom mmrefine.training.rundir import RunLock\nwith RunLock({str(run_dir)!r}):\n"
         "    print('locked', flush=True)\n    time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunError, match=f"in use by another fit \\(process {holder.pid}\\)"):
            fit(tiny_config(tmp_path, trainer={"max_epochs": 1}))
        assert not (run_dir / "config.yaml").exists()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    fit(tiny_config(tmp_path, trainer={"max_epochs": 1}), test=False)  # the OS released the lock of the killed process


def test_checkpoints_load_strictly(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, trainer={"max_epochs": 1})
    res = fit(cfg, test=False)
    ckpt = torch.load(res.best_checkpoint, weights_only=True)
    ckpt["state_dict"] = {k: v for k, v in ckpt["state_dict"].items() if ".head." not in k}
    broken = tmp_path / "no_head.ckpt"
    torch.save(ckpt, broken)
    with pytest.raises(CheckpointMismatchError, match="do not match the model"):
        evaluate(cfg, broken, "test")


def test_test_time_data_settings_must_match_training(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, trainer={"max_epochs": 1})
    res = fit(cfg, test=False)
    changed = tiny_config(tmp_path, data={"standardize": False}, trainer={"max_epochs": 1})
    with pytest.raises(ConfigError, match="data.standardize: trained with True, now False"):
        evaluate(changed, res.best_checkpoint, "test")
    loader_only = tiny_config(tmp_path, data={"batch_size": 7}, trainer={"max_epochs": 1})
    assert evaluate(loader_only, res.best_checkpoint, "test")["test/acc"] > 0.5  # loader settings do not matter


def test_atomic_checkpoint_is_what_fit_uses(tmp_path: Path) -> None:
    from mmrefine.training.engine import make_trainer

    trainer, best = make_trainer(tiny_config(tmp_path), tmp_path / "s", "val/acc", "max", 1)
    assert isinstance(best, AtomicCheckpoint)
    assert sum(isinstance(c, AtomicCheckpoint) for c in trainer.callbacks) == 2
    assert read_records(tmp_path) == []
