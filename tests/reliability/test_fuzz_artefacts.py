"""Corrupted saved artefacts (hypothesis): predictor directories and run directories.

A file is truncated, overwritten with garbage, has a JSON / YAML field removed or given
another type, or a tensor of a safetensors file changes shape. The property: reading it
back either works (the field was optional, the change harmless) with finite outputs, or
fails with one of mmrefine's errors, one line, naming the file: never a raw ``KeyError``,
``RuntimeError`` or ``AttributeError``.
"""

from __future__ import annotations

import io
import json
import shutil
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import event, given, settings
from hypothesis import strategies as st

from mmrefine import TablePredictor
from mmrefine.cli import main
from mmrefine.core.errors import MMRefineError
from tests.conftest import tiny_config
from tests.predictors.test_table_predictor import shop
from tests.reliability.fuzz import assert_one_line_naming, examples


def _keys(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((*prefix, k))
            out += _keys(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node[:3]):
            out += _keys(v, (*prefix, i))
    return out


@st.composite
def corruption(draw: st.DrawFn, files: list[str]) -> tuple[str, str, Any]:
    """``(file, operation, argument)``."""
    name = draw(st.sampled_from(files))
    ops = ["truncate", "garbage"]
    if name.endswith((".json", ".yaml")):
        ops += ["remove", "retype"]
    if name.endswith(".safetensors"):
        ops += ["shape"]
    op = draw(st.sampled_from(ops))
    arg = draw(st.integers(0, 10**6)) if op in ("truncate", "garbage", "shape") else draw(st.integers(0, 10**6))
    return name, op, arg


def corrupt(path: Path, op: str, arg: int) -> None:
    data = path.read_bytes()
    if op == "truncate":
        path.write_bytes(data[: arg % max(1, len(data))])
    elif op == "garbage":
        at = arg % max(1, len(data))
        path.write_bytes(data[:at] + bytes((b * 7 + 13) % 256 for b in data[at:at + 64]) + data[at + 64:])
    elif op in ("remove", "retype"):
        load = json.loads if path.suffix == ".json" else yaml.safe_load
        doc = load(data)
        keys = _keys(doc)
        if not keys:
            return
        key = keys[arg % len(keys)]
        parent = doc
        for k in key[:-1]:
            parent = parent[k]
        if op == "remove" and isinstance(parent, dict):
            del parent[key[-1]]
        else:
            old = parent[key[-1]]
            parent[key[-1]] = [old] if not isinstance(old, list) else "retyped"
        path.write_text(json.dumps(doc) if path.suffix == ".json" else yaml.safe_dump(doc))
    elif op == "shape":
        from safetensors.torch import load_file, save_file

        state = load_file(str(path))
        name = sorted(state)[arg % len(state)]
        t = state[name]
        state[name] = t.reshape(-1)[:-1].clone() if t.numel() > 1 else t.reshape(1, -1).repeat(2, 1)
        save_file(state, str(path))


@pytest.fixture(scope="module")
def saved_predictor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = TablePredictor(label="label", fusion="concat", num_folds=2, epochs=1, patience=None, verbosity=0).fit(shop(120))
    return p.save(tmp_path_factory.mktemp("predictor") / "saved")


PREDICTOR_FILES = ["predictor.json", "preprocessing.json", "linear.skops", "gbm.skops", "network/fold_0.safetensors",
                   "network/fold_1.safetensors"]


@settings(max_examples=examples(40))
@given(corruption(PREDICTOR_FILES))
def test_a_corrupted_predictor_loads_or_fails_naming_the_file(saved_predictor: Path, tmp_path_factory: pytest.TempPathFactory,
                                                               damage: tuple[str, str, int]) -> None:
    name, op, arg = damage
    d = tmp_path_factory.mktemp("damaged") / "saved"
    shutil.copytree(saved_predictor, d)
    corrupt(d / name, op, arg)
    try:
        p = TablePredictor.load(d, verbosity=0)
        df = shop(30, seed=5)
        proba = p.predict_proba(df).to_numpy()
        assert proba.shape == (30, 2) and np.isfinite(proba).all()
        assert len(p.predict(df)) == 30 and len(p.leaderboard(df)) >= 2
        event(f"{op} {name}: read")
    except MMRefineError as exc:
        assert_one_line_naming(exc, [Path(name).name])
        event(f"{op} {name}: refused")
    except Exception as exc:  # noqa: BLE001 - the property: nothing else escapes
        raise AssertionError(f"{op} of {name} ({arg}) raised {type(exc).__name__}: {exc}") from exc


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmrefine.training.engine import fit

    tmp = tmp_path_factory.mktemp("run")
    cfg = tiny_config(tmp, trainer={"max_epochs": 2})
    fit(cfg)
    return Path(cfg.run_dir)


RUN_FILES = ["config.yaml", "metrics.json", "model.safetensors", "train/checkpoints/last.ckpt", "train/logs/metrics.csv"]
READERS = ["report", "test", "resume", "teacher"]


@settings(max_examples=examples(24))
@given(corruption(RUN_FILES), st.sampled_from(READERS))
def test_a_corrupted_run_directory_is_read_or_refused_naming_the_file(finished_run: Path, tmp_path_factory: pytest.TempPathFactory,
                                                                      damage: tuple[str, str, int], reader: str) -> None:
    name, op, arg = damage
    run = tmp_path_factory.mktemp("damaged") / "run"
    shutil.copytree(finished_run, run)
    corrupt(run / name, op, arg)
    cfg = run / "config.yaml"
    ok_cfg = run.parent / "ok.yaml"  # the configuration as a user would pass it, untouched
    raw = yaml.safe_load((finished_run / "config.yaml").read_text())
    raw["run_dir"] = str(run)
    ok_cfg.write_text(yaml.safe_dump(raw))
    try:
        if reader == "teacher":
            from mmrefine.config import load_config
            from mmrefine.training.builders import build_datamodule, build_task, load_teacher

            c = load_config(ok_cfg)
            dm = build_datamodule(c)
            dm.setup()
            load_teacher(str(run), dm.schema, build_task(c, dm))
            return
        argv = {"report": ["report", str(run)],
                "test": ["test", "-c", str(ok_cfg), "--ckpt", str(run / "train" / "checkpoints" / "last.ckpt")],
                "resume": ["fit", "-c", str(cfg if name != "config.yaml" else ok_cfg), "--resume"]}[reader]
        err = io.StringIO()
        with redirect_stderr(err):
            code = main(argv)
        lines = [line for line in err.getvalue().splitlines() if line.startswith("mmrefine: error")]
        event(f"{reader}: exit {code}")
        if code != 0:
            assert code == 2 and len(lines) == 1, err.getvalue()
            assert Path(name).name in lines[0] or str(run) in lines[0], f"{op} of {name} via {reader}: {lines[0]}"
    except MMRefineError as exc:
        assert_one_line_naming(exc, [Path(name).name, str(run)])
    except Exception as exc:  # noqa: BLE001 - the property: nothing else escapes
        raise AssertionError(f"{op} of {name} ({arg}) via {reader} raised {type(exc).__name__}: {exc}") from exc
