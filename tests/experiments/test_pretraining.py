"""The study tools behind "where the Refiner's gain comes from": the label curve over sweeps
and the before / after pretraining probes."""

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from mmrefine.core.errors import CheckpointMismatchError, ConfigError, DataError
from mmrefine.evaluation.probes import collect, linear_probe
from mmrefine.experiments.pretraining import label_curve, pretraining_probe
from mmrefine.training.engine import fit, prepare
from tests.conftest import TRACKED_EXPERIMENT, tiny_config


def _sweep(tmp_path: Path, name: str, fraction: float | None, accs: dict[str, list[float]]) -> tuple[Path, Path]:
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(TRACKED_EXPERIMENT))
    variants = {v: ({"data": {"labelled_fraction": fraction}} if fraction is not None else {}) for v in accs}
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump({"experiment": "experiment.yaml", "seeds": [0, 1], "variants": variants}))
    out = tmp_path / name
    out.mkdir()
    lines = [json.dumps({"variant": v, "seed": s, "test": {"test/acc": a}}) for v, vals in accs.items() for s, a in enumerate(vals)]
    (out / "runs.jsonl").write_text("\n".join(lines) + "\n")
    return config, out


def test_label_curve_groups_seeds_by_each_variants_labelled_fraction(tmp_path: Path) -> None:
    s10 = _sweep(tmp_path, "s10", 0.1, {"base": [0.6, 0.62], "ref": [0.5, 0.7]})
    s100 = _sweep(tmp_path, "s100", None, {"base": [0.8, 0.82]})  # the experiment's fraction (1.0)
    curve = label_curve([s100, s10], "test/acc")
    assert curve == {"base": {0.1: [0.6, 0.62], 1.0: [0.8, 0.82]}, "ref": {0.1: [0.5, 0.7]}}
    assert list(curve["base"]) == [0.1, 1.0]  # sorted by fraction
    with pytest.raises(DataError, match="no test metric 'test/f1'"):
        label_curve([s10], "test/f1")
    s20 = _sweep(tmp_path, "s20", 0.2, {"base": [0.7, 0.72], "ref": [0.9]})  # ref: seed 1 still to run
    assert label_curve([s20], "test/acc") == {"base": {0.2: [0.7, 0.72]}}
    assert label_curve([s20], "test/acc", partial=True) == {"base": {0.2: [0.7, 0.72]}, "ref": {0.2: [0.9]}}
    bad = _sweep(tmp_path, "bad", 0.2, {"base": [0.5]})
    (bad[1] / "runs.jsonl").write_text(json.dumps({"variant": "other", "seed": 0, "test": {"test/acc": 0.5}}) + "\n")
    with pytest.raises(ConfigError, match="variant 'other' is not in"):
        label_curve([bad], "test/acc")


def test_pretraining_probe_measures_the_starting_weights_and_the_pretrained_ones(tmp_path: Path) -> None:
    over = {"model": {"refiner": {}}, "pretrain": {"epochs": 2}, "data": {"labelled_fraction": 0.2}, "trainer": {"max_epochs": 1}}
    res = fit(tiny_config(tmp_path, **over), test=False)
    out = pretraining_probe(res.run_dir, ks=(1, 5))
    assert set(out) == {"before", "after"}
    for state in out.values():
        assert 0.0 <= state["probe_labelled"] <= 1.0 and 0.0 <= state["probe_all"] <= 1.0
        assert set(state["retrieval"]) == {"fou", "kar"} and {"1", "5", "query"} <= set(state["retrieval"]["fou"])
    # "before" is the seeded model pretraining started from; "after" the kept pretrained weights
    dm, _, model = prepare(tiny_config(tmp_path, **over))
    train, test = collect(model, dm.loader(dm.splits["train"])), collect(model, dm.loader(dm.splits["test"]))
    assert out["before"]["probe_all"] == linear_probe(train.fused, train.labels, test.fused, test.labels)
    model.load_state_dict(load_file(Path(res.run_dir) / "pretrain" / "model.safetensors"))
    after = collect(model, dm.loader(dm.splits["test"]))
    assert not torch.allclose(after.fused, test.fused)
    idx = torch.as_tensor(dm.labelled_indices())
    assert len(idx) < len(train.labels)
    train_after = collect(model, dm.loader(dm.splits["train"]))
    assert out["after"]["probe_labelled"] == linear_probe(train_after.fused[idx], train_after.labels[idx], after.fused, after.labels)
    # a run without pretraining, and weights of another architecture, are clear errors
    plain = fit(tiny_config(tmp_path / "plain", trainer={"max_epochs": 1}), test=False)
    with pytest.raises(DataError, match="no pretrain/model.safetensors"):
        pretraining_probe(plain.run_dir)
    weights = Path(res.run_dir) / "pretrain" / "model.safetensors"
    save_file({k: v for k, v in load_file(weights).items() if "decoders" not in k}, weights)
    with pytest.raises(CheckpointMismatchError, match="does not fit the model"):
        pretraining_probe(res.run_dir)
