"""Shared fixtures: a small mfeat experiment config and the shared data root."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from mmrefine.config import ExperimentConfig, deep_merge, load_config
from mmrefine.data.paths import default_data_root

DATA_ROOT = default_data_root()


@pytest.fixture(autouse=True)
def _quiet() -> None:
    from mmrefine.logging_setup import quiet_lightning

    quiet_lightning()
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    torch.manual_seed(0)


def requires_data(sub: str) -> Any:
    """Skip (with a clear reason) when ../shared/data/<sub> is absent; CI always has it."""
    present = DATA_ROOT is not None and (DATA_ROOT / sub).exists()
    return pytest.mark.skipif(not present, reason=f"real data '{sub}' not found under ../shared/data (set MMREFINE_DATA)")


def tiny_config(tmp_path: Path, **over: Any) -> ExperimentConfig:
    """Two mfeat views, small MLPs, a few epochs: seconds to fit."""
    base: dict[str, Any] = {
        "seed": 0,
        "run_dir": str(tmp_path / "run"),
        "data": {"name": "mfeat", "views": ["fou", "kar"], "batch_size": 64},
        "model": {"default_encoder": {"name": "mlp", "hidden": [32], "out_dim": 16, "dropout": 0.1}, "fusion": {"name": "concat"}},
        "optim": {"lr": 0.003, "warmup_steps": 5},
        "trainer": {"max_epochs": 3, "progress_bar": False, "accelerator": "cpu", "devices": 1, "num_sanity_val_steps": 0},
    }
    return load_config(data=deep_merge(base, over))


def random_features(dims: dict[str, int], b: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(b, d, generator=g) for m, d in dims.items()}


TRACKED_EXPERIMENT: dict[str, Any] = {
    "data": {"name": "mfeat", "views": ["fou", "kar"], "batch_size": 64},
    "model": {"default_encoder": {"name": "mlp", "hidden": [32], "out_dim": 16}, "fusion": {"name": "concat"}},
    "optim": {"lr": 0.003},
    "trainer": {"max_epochs": 3, "progress_bar": False, "accelerator": "cpu", "devices": 1, "num_sanity_val_steps": 0},
}


@pytest.fixture(scope="session")
def tracked_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-variant x 2-seed mfeat sweep (3 epochs, missing modalities) run once with
    ``--logger tensorboard --logger mlflow``; its OUT folder (runs.jsonl, runs/, mlflow.db)."""
    import yaml

    from mmrefine.cli import main

    pytest.importorskip("mlflow")
    pytest.importorskip("tensorboard")
    d = tmp_path_factory.mktemp("tracked")
    (d / "exp.yaml").write_text(yaml.safe_dump(TRACKED_EXPERIMENT))
    sweep = {"experiment": "exp.yaml", "seeds": [0, 1], "metric": "test/acc", "missing": True,
             "variants": {"concat": {}, "gmu": {"model": {"fusion": {"name": "gmu", "out_dim": 16}}}}}
    (d / "compare.yaml").write_text(yaml.safe_dump(sweep))
    out = d / "out"
    assert main(["sweep", "-c", str(d / "compare.yaml"), "--out", str(out), "--logger", "tensorboard", "--logger", "mlflow"]) == 0
    return out
