"""Trackers users already run: TensorBoard and MLflow beside the CSV logs, chosen in the config or on the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mmrefine.cli import main
from mmrefine.core.errors import ConfigError
from tests.conftest import TRACKED_EXPERIMENT
from tests.reliability.test_faults import ENV, kill_when, last_epoch

pytest.importorskip("mlflow")
pytest.importorskip("tensorboard")

EXPERIMENT = TRACKED_EXPERIMENT


def _runs(uri: str, experiment: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id])


def _scalars(event_dir: Path, tag: str) -> list[float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(event_dir))
    acc.Reload()
    return [s.value for s in acc.Scalars(tag)]


@pytest.mark.slow
def test_a_sweep_logs_to_tensorboard_and_mlflow_with_the_records_values(tracked_sweep: Path) -> None:
    out = tracked_sweep
    records = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    runs = _runs(f"sqlite:///{out.resolve() / 'mlflow.db'}", "compare")  # one experiment for the sweep, named after its file
    assert sorted(r.info.run_name for r in runs) == ["concat/seed0", "concat/seed1", "gmu/seed0", "gmu/seed1"]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{out.resolve() / 'mlflow.db'}")
    for run in runs:
        rec = next(r for r in records if f"{r['variant']}/seed{r['seed']}" == run.info.run_name)
        assert run.info.status == "FINISHED"
        assert run.data.params["seed"] == str(rec["seed"]) and run.data.params["trainer.max_epochs"] == "3"
        assert run.data.params["model.fusion.name"] == ("gmu" if rec["variant"] == "gmu" else "concat")
        for split in ("test", "val"):  # the final values are the fit's, not the missing-modality evaluations'
            for k, v in rec[split].items():
                assert run.data.metrics[k] == pytest.approx(v), (run.info.run_name, k)
        assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"model.safetensors", "metrics.json"}
        tb = Path(rec["run_dir"]) / "train" / "tensorboard"
        assert _scalars(tb, "val/acc")[-1] == pytest.approx(rec["val"]["val/acc"])
        assert _scalars(tb, "test/acc")[-1] == pytest.approx(rec["test"]["test/acc"])


@pytest.mark.slow
def test_a_killed_and_resumed_fit_is_one_mlflow_run_and_one_tensorboard_run(tmp_path: Path) -> None:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump({**EXPERIMENT, "trainer": {**EXPERIMENT["trainer"], "max_epochs": 6, "loggers": ["tensorboard", "mlflow"]}}))
    run = tmp_path / "run"
    args = ["fit", "-c", str(cfg), "--run-dir", str(run)]
    p = subprocess.Popen([sys.executable, "-c", "import sys; from mmrefine.cli import main; sys.exit(main(sys.argv[1:]))", *args],
                         env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    kill_when(p, lambda: last_epoch(run) >= 2, timeout=240)
    assert main([*args, "--resume"]) == 0
    uri = f"sqlite:///{run.resolve() / 'mlflow.db'}"
    runs = _runs(uri, "run")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert json.loads((run / "tracking.json").read_text())["run_id"] == runs[0].info.run_id
    metrics = json.loads((run / "metrics.json").read_text())
    assert runs[0].data.metrics["test/acc"] == pytest.approx(metrics["test"]["test/acc"])
    epochs = [m.step for m in __import__("mlflow").tracking.MlflowClient(tracking_uri=uri).get_metric_history(runs[0].info.run_id, "epoch")]
    assert max(epochs) >= 5 * 3  # the resumed epochs were logged into the same run (3 steps per epoch here)
    assert [d.name for d in (run / "train").iterdir() if d.name == "tensorboard"] == ["tensorboard"]
    assert len(_scalars(run / "train" / "tensorboard", "val/acc")) >= 6
    assert main(["fit", "-c", str(cfg), "--run-dir", str(run), "--overwrite"]) == 0  # a fresh fit is a new MLflow run
    assert len(_runs(uri, "run")) == 2


def test_an_unknown_or_uninstalled_logger_is_one_line_before_anything_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                                   capsys: pytest.CaptureFixture) -> None:
    import importlib.util

    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump({**EXPERIMENT, "trainer": {**EXPERIMENT["trainer"], "loggers": ["wandb"]}}))
    assert main(["fit", "-c", str(cfg), "--run-dir", str(tmp_path / "a")]) == 2
    assert "trainer.loggers must list loggers among csv, tensorboard, mlflow" in capsys.readouterr().err
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    cfg.write_text(yaml.safe_dump(EXPERIMENT))
    assert main(["fit", "-c", str(cfg), "--run-dir", str(tmp_path / "b"), "--logger", "mlflow"]) == 2
    assert "'mlflow' needs the mlflow package: pip install 'mmrefine[track]'" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    from mmrefine.training.loggers import check_loggers

    with pytest.raises(ConfigError, match="unknown logger 'comet'"):
        check_loggers(["comet"])
