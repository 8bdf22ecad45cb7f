"""Faults from outside: a pickle payload in a checkpoint never runs, and a fit
or a sweep killed with SIGKILL at several points, then resumed, ends with the
weights of an uninterrupted run, to the bit. The kill tests run real
subprocesses (one thread each) and kill them by PID."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
import torch
import yaml
from safetensors.torch import load_file

from mmrefine.cli import main
from mmrefine.training.engine import read_checkpoint

EXPERIMENT = {
    "data": {"name": "mfeat", "views": ["fou", "kar", "mor"], "batch_size": 32},
    "model": {"default_encoder": {"name": "mlp", "hidden": [64], "out_dim": 32, "dropout": 0.1}, "fusion": {"name": "gmu", "out_dim": 32},
              "refiner": {"ms": {"weight": 0.1}}},
    "optim": {"warmup_steps": 10},
    "trainer": {"max_epochs": 6, "progress_bar": False, "accelerator": "cpu", "devices": 1},
}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import sys, torch; torch.set_num_threads(1); from mmrefine.cli import main; "
                             "sys.exit(main(sys.argv[1:]))", *args], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(p: subprocess.Popen) -> None:
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err


def kill_when(p: subprocess.Popen, ready: Callable[[], bool], timeout: float = 120) -> None:
    """SIGKILL ``p`` as soon as ``ready()``; fail if it ended first."""
    end = time.monotonic() + timeout
    while not ready():
        assert p.poll() is None, f"the process ended before the kill point: {p.stderr.read()}"
        assert time.monotonic() < end, "kill point not reached in time"
        time.sleep(0.01)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL


def last_epoch(run: Path) -> int:
    path = run / "train" / "checkpoints" / "last.ckpt"
    return read_checkpoint(path)["epoch"] if path.is_file() else -1


def same_weights(a: Path, b: Path) -> None:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    assert json.loads((a / "metrics.json").read_text())["test"] == json.loads((b / "metrics.json").read_text())["test"]


@pytest.mark.slow
def test_fit_killed_at_several_points_resumes_to_the_same_bits(tmp_path: Path) -> None:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump(EXPERIMENT))
    ref = tmp_path / "ref"
    finish(cli("fit", "-c", str(cfg), "--run-dir", str(ref)))
    points = {
        "before the first checkpoint": lambda run: (run / "config.yaml").is_file(),
        "after epoch 2": lambda run: last_epoch(run) >= 2,
    }
    for name, ready in points.items():
        run = tmp_path / name.replace(" ", "_")
        kill_when(cli("fit", "-c", str(cfg), "--run-dir", str(run)), lambda: ready(run))
        assert not (run / "metrics.json").exists(), name
        finish(cli("fit", "-c", str(cfg), "--run-dir", str(run), "--resume"))
        same_weights(ref, run)


@pytest.mark.slow
def test_sweep_killed_mid_run_resumes_to_the_same_bits(tmp_path: Path) -> None:
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump({**EXPERIMENT, "trainer": {**EXPERIMENT["trainer"], "max_epochs": 4}}))
    (tmp_path / "sweep.yaml").write_text("experiment: exp.yaml\nseeds: [0]\nmissing: false\n"
                                         "variants: {gmu: {}, concat: {model: {fusion: {name: concat}}}}\n")
    ref, out = tmp_path / "ref", tmp_path / "out"
    finish(cli("sweep", "-c", str(tmp_path / "sweep.yaml"), "--out", str(ref)))
    second = out / "runs" / "concat" / "seed0"
    kill_when(cli("sweep", "-c", str(tmp_path / "sweep.yaml"), "--out", str(out)), lambda: last_epoch(second) >= 1)
    assert len((out / "runs.jsonl").read_text().splitlines()) == 1
    finish(cli("sweep", "-c", str(tmp_path / "sweep.yaml"), "--out", str(out)))
    records = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert [r["variant"] for r in records] == ["gmu", "concat"]
    for variant in ("gmu", "concat"):
        same_weights(ref / "runs" / variant / "seed0", out / "runs" / variant / "seed0")


class Payload:
    """Unpickling this creates a file: proof that a checkpoint ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (self.marker,))


def test_a_pickle_payload_never_runs_through_any_verb(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump({**EXPERIMENT, "trainer": {**EXPERIMENT["trainer"], "max_epochs": 1}}))
    run = tmp_path / "run"
    assert main(["fit", "-c", str(cfg), "--run-dir", str(run)]) == 0
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.ckpt"
    good = read_checkpoint(next((run / "train" / "checkpoints").glob("best-*.ckpt")))
    torch.save({**good, "payload": Payload(marker)}, evil)
    verbs = [
        ["validate", "-c", str(cfg), "--ckpt", str(evil)],
        ["test", "-c", str(cfg), "--ckpt", str(evil)],
        ["predict", "-c", str(cfg), "--ckpt", str(evil), "--out", str(tmp_path / "p.csv")],
        ["export", "-c", str(cfg), "--ckpt", str(evil), "--out", str(tmp_path / "m.safetensors")],
    ]
    for argv in verbs:
        assert main(argv) == 2, argv
        assert "cannot read checkpoint" in capsys.readouterr().err
    # through --resume (last.ckpt) and through a report (metrics.json's best checkpoint)
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").unlink()
    (run / "train" / "checkpoints" / "last.ckpt").write_bytes(evil.read_bytes())
    assert main(["fit", "-c", str(cfg), "--run-dir", str(run), "--resume"]) == 2
    (run / "metrics.json").write_text(json.dumps({**metrics, "best_checkpoint": str(evil)}))
    assert main(["report", str(run)]) == 2
    assert not marker.exists()


@pytest.mark.slow
def test_parallel_sweep_killed_resumes_without_duplicates_or_losses(tmp_path: Path) -> None:
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump({**EXPERIMENT, "trainer": {**EXPERIMENT["trainer"], "max_epochs": 3}}))
    (tmp_path / "sweep.yaml").write_text("experiment: exp.yaml\nseeds: [0, 1]\nmissing: false\n"
                                         "variants: {gmu: {}, concat: {model: {fusion: {name: concat}}}}\n")
    out = tmp_path / "out"
    records = out / "runs.jsonl"
    p = cli("sweep", "-c", str(tmp_path / "sweep.yaml"), "--out", str(out), "--jobs", "2")
    kill_when(p, lambda: records.is_file() and len(records.read_text().splitlines()) >= 1, timeout=240)
    time.sleep(1.5)  # the orphaned workers notice their parent is gone and exit, releasing their run locks
    finish(cli("sweep", "-c", str(tmp_path / "sweep.yaml"), "--out", str(out), "--jobs", "2"))
    got = [(r["variant"], r["seed"]) for r in map(json.loads, records.read_text().splitlines())]
    assert sorted(got) == [("concat", 0), ("concat", 1), ("gmu", 0), ("gmu", 1)]  # each once: none lost, none twice
    for variant, seed in got:
        assert (out / "runs" / variant / f"seed{seed}" / "metrics.json").is_file()
