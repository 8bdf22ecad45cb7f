"""Multi-node DDP as documented in docs/performance.md: two "machines" simulated by two
`mmrefine fit` processes on this one, joined through MASTER_ADDR / MASTER_PORT /
NODE_RANK. Rank 0 alone owns the run directory; both train, each on half the data."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mmrefine.config import load_config
from mmrefine.training.engine import prepare, read_checkpoint
from mmrefine.training.logs import read_logs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_two_node_ddp_run_on_one_machine(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = {
        "seed": 0, "run_dir": str(run),
        "data": {"name": "mfeat", "views": ["fou", "kar"], "batch_size": 32},
        "model": {"default_encoder": {"name": "mlp", "hidden": [32], "out_dim": 16}, "fusion": {"name": "concat"}},
        "optim": {"warmup_steps": 5},
        "trainer": {"max_epochs": 2, "progress_bar": False, "accelerator": "cpu", "devices": 1, "num_nodes": 2,
                    "strategy": "ddp", "num_sanity_val_steps": 0},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    port = str(free_port())
    procs = []
    for rank in (0, 1):
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "NODE_RANK": str(rank), "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, "-c", "import sys; from mmrefine.cli import main; sys.exit(main(sys.argv[1:]))",
                                       "fit", "-c", str(tmp_path / "c.yaml")], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["test/acc"] > 0.5 and (run / "model.safetensors").is_file()
    ckpt = read_checkpoint(run / "train" / "checkpoints" / "last.ckpt")
    dm, _, _ = prepare(load_config(tmp_path / "c.yaml"))
    per_node = math.ceil(len(dm.labelled_train()) / 2)  # the distributed sampler gives each node half the samples
    assert ckpt["global_step"] == 2 * math.ceil(per_node / 32), ckpt["global_step"]  # 2 epochs
    assert not read_logs(run / "train").empty


def test_a_stray_rank_variable_on_a_single_process_run_is_refused(tmp_path: Path, monkeypatch) -> None:
    """A process told it is rank 1 would train and write nothing: with a one-process
    config that is a configuration error, said before anything runs."""
    import pytest

    from mmrefine.core.errors import ConfigError
    from mmrefine.training.engine import fit
    from tests.conftest import tiny_config

    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(ConfigError, match="rank .*LOCAL_RANK.* one process"):
        fit(tiny_config(tmp_path))
    assert not (tmp_path / "run" / "metrics.json").exists()
