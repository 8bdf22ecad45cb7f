"""Training engine behaviour on the bundled UCI Multiple Features data."""

from __future__ import annotations

import math
import os
from pathlib import Path

import lightning as L
import pytest
import torch
from safetensors.torch import load_file

from mmrefine.core.errors import BatchError, CheckpointMismatchError, ConfigError, DataError, RunError
from mmrefine.training.engine import evaluate, fit, load_inference_model, make_trainer, predict, prepare, read_checkpoint
from mmrefine.training.logs import read_logs
from mmrefine.training.module import MultimodalModule
from tests.conftest import tiny_config


def test_fit_learns_and_writes_artifacts(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, data={"views": ["fou", "kar", "mor"]}, model={"refiner": {"ms": {"weight": 0.1}}}, trainer={"max_epochs": 4})
    res = fit(cfg)
    assert res.test["test/acc"] > 0.9  # 10 classes: chance is 0.1
    for k in ("val/task", "val/refiner_fou", "val/refiner_kar", "val/refiner_mor", "val/ms", "val/loss"):
        assert k in res.val
    assert (res.run_dir / "metrics.json").is_file() and (res.run_dir / "config.yaml").is_file()
    logs = (res.run_dir / "train" / "logs" / "metrics.csv").read_text().splitlines()[0]
    assert "train/refiner_fou_epoch" in logs and "train/ms_epoch" in logs and "val/acc" in logs
    # the exported inference model has no decoders and reproduces the trained model's outputs
    exported = load_file(res.run_dir / "model.safetensors")
    assert not any("decoder" in k for k in exported)
    inf = load_inference_model(cfg, res.run_dir / "model.safetensors")
    batch = res.datamodule.splits["test"].__getitems__(list(range(16)))
    res.module.model.eval()
    assert torch.allclose(inf(batch.inputs, batch.mask).logits, res.module.model(batch.inputs, batch.mask).logits)
    # evaluate/predict from the best checkpoint agree with fit's numbers
    assert evaluate(cfg, res.best_checkpoint, "test")["test/acc"] == pytest.approx(res.test["test/acc"])
    out = predict(cfg, res.best_checkpoint, tmp_path / "pred.csv")
    lines = out.read_text().splitlines()
    assert len(lines) == 401 and lines[0].endswith("p9,label")


def test_bf16_mixed_precision_trains_with_every_loss_in_fp32(tmp_path: Path) -> None:
    """``trainer.precision: bf16-mixed``: products in bfloat16 under autocast, every loss term
    computed in fp32 from the output cast back (close to the fp32 loss of the same weights),
    gradients reaching every parameter, fp32 weights exported, and the model learns."""
    cfg = tiny_config(tmp_path, model={"refiner": {"ms": {"weight": 0.1}}}, trainer={"max_epochs": 3, "precision": "bf16-mixed"})
    res = fit(cfg)
    assert res.test["test/acc"] > 0.8  # 10 classes: chance is 0.1
    assert all(v.dtype == torch.float32 for v in load_file(res.run_dir / "model.safetensors").values())
    module = res.module.eval()
    batch = res.datamodule.splits["test"].__getitems__(list(range(64)))
    exact, _ = module.loss_terms(batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert module.model(batch.inputs, batch.mask).logits.dtype == torch.bfloat16
        mixed, out = module.loss_terms(batch)
    assert out.logits.dtype == out.fused.dtype == torch.float32
    assert mixed.keys() == exact.keys() == {"task", "refiner_fou", "refiner_kar", "ms"}
    for k, v in mixed.items():
        assert v.dtype == torch.float32 and v.item() == pytest.approx(exact[k].item(), rel=0.05, abs=1e-3), k
    module.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        total = sum(module.loss_terms(batch)[0].values())
    total.backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in module.model.parameters() if p.requires_grad)


def _encoder_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if "encoders" in k}


def test_pretraining_changes_encoders_without_labels(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, model={"refiner": {}}, pretrain={"epochs": 2})
    dm, task, model = prepare(cfg)
    before = _encoder_weights(model)
    loader = dm.pretrain_dataloader()
    assert all(b.labels is None for b in loader)  # no label reaches this stage
    module = MultimodalModule(model, task, cfg.optim, "pretrain", dm.schema)
    trainer, _ = make_trainer(cfg, tmp_path / "p", "val/loss", "min", 2)
    trainer.fit(module, train_dataloaders=loader, val_dataloaders=dm.val_dataloader())
    after = _encoder_weights(model)
    assert all(not torch.equal(before[k], after[k]) for k in before if k.endswith("weight"))
    head = [v for k, v in model.state_dict().items() if ".head." in k]
    _, _, fresh = prepare(cfg)
    assert all(torch.equal(a, b) for a, b in zip(head, [v for k, v in fresh.state_dict().items() if ".head." in k]))


def test_pretraining_needs_a_refiner(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a model with self-supervised terms"):
        fit(tiny_config(tmp_path, pretrain={"epochs": 1}))


def test_labelled_fraction_with_pretraining_runs_both_stages(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, data={"labelled_fraction": 0.1}, model={"refiner": {}}, pretrain={"epochs": 1},
                      trainer={"max_epochs": 15}, optim={"warmup_steps": 0})
    res = fit(cfg)
    assert (res.run_dir / "pretrain" / "model.safetensors").is_file()
    assert len(res.datamodule.labelled_train()) == 120
    assert res.test["test/acc"] > 0.3


def test_a_run_starts_from_another_runs_pretraining_at_other_labels(tmp_path: Path) -> None:
    """``pretrain.weights``: the weights another run's pretraining computed, found by
    ``{seed}``, equal to what this run's own pretraining computes (it reads no labels, nor
    does a ReFNetMS run's), copied into the run; another pretraining setting or architecture
    is refused."""
    base = {"model": {"refiner": {}}, "pretrain": {"epochs": 1}, "trainer": {"max_epochs": 2}}
    source = fit(tiny_config(tmp_path / "a", data={"labelled_fraction": 0.5}, **base)).run_dir
    own = fit(tiny_config(tmp_path / "b", data={"labelled_fraction": 0.2}, **base)).run_dir
    reuse = {**base, "pretrain": {"epochs": 1, "weights": str(source)}}
    reused = fit(tiny_config(tmp_path / "c", data={"labelled_fraction": 0.2}, **reuse)).run_dir
    pretrained = [load_file(d / "pretrain" / "model.safetensors") for d in (source, own, reused)]
    assert all(torch.equal(pretrained[0][k], v) for p in pretrained[1:] for k, v in p.items())
    assert not (reused / "pretrain" / "checkpoints").exists()  # not recomputed
    # the Multi-Similarity term needs labels: ReFNetMS pretrains what ReFNet does, and may start from it
    ms = {"model": {"refiner": {"ms": {"weight": 0.5}}}, "trainer": {"max_epochs": 1}, "data": {"labelled_fraction": 0.2}}
    ms_own = fit(tiny_config(tmp_path / "ms", pretrain={"epochs": 1}, **ms)).run_dir
    ms_reused = fit(tiny_config(tmp_path / "ms2", pretrain={"epochs": 1, "weights": str(source)}, **ms))
    for d in (ms_own, ms_reused.run_dir):
        got = load_file(d / "pretrain" / "model.safetensors")
        assert got.keys() == pretrained[0].keys() and all(torch.equal(pretrained[0][k], v) for k, v in got.items())
    assert ms_reused.val["val/ms"] > 0
    seeded = tmp_path / "runs" / "seed0"
    seeded.parent.mkdir()
    source.rename(seeded)
    ok = tiny_config(tmp_path / "d", data={"labelled_fraction": 0.2}, **{**base, "pretrain": {"epochs": 1, "weights": str(tmp_path / "runs" / "seed{seed}")}})
    assert fit(ok).test["test/acc"] > 0
    with pytest.raises(ConfigError, match=r"other settings \(pretrain.lr differ\)"):
        fit(tiny_config(tmp_path / "e", **{**base, "pretrain": {"epochs": 1, "lr": 0.01, "weights": str(seeded)}}))
    with pytest.raises(ConfigError, match="seed1 does not exist"):
        fit(tiny_config(tmp_path / "f", **{**base, "pretrain": {"epochs": 1, "weights": str(tmp_path / "runs" / "seed{seed}")}}, seed=1))
    loose = tmp_path / "loose.safetensors"  # no config beside it: only the architecture is checked
    loose.write_bytes((seeded / "pretrain" / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointMismatchError, match="pretrain.weights"):
        fit(tiny_config(tmp_path / "g", model={"refiner": {}, "fusion": {"name": "gmu"}}, pretrain={"epochs": 1, "weights": str(loose)}))
    assert not (tmp_path / "f").exists() and not (tmp_path / "g").exists()  # refused before anything is written
    with pytest.raises(ConfigError, match="needs pretrain.epochs > 0"):
        tiny_config(tmp_path / "h", pretrain={"weights": str(loose)})


class Interrupt(L.Callback):
    def __init__(self, at_epoch: int) -> None:
        self.at_epoch = at_epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.at_epoch:
            raise RuntimeError("simulated crash")


def test_interrupted_and_resumed_fit_matches_uninterrupted(tmp_path: Path) -> None:
    over = {"model": {"refiner": {}}, "trainer": {"max_epochs": 4, "num_sanity_val_steps": 2, "last_checkpoint_every_s": 0},
            "optim": {"warmup_steps": 10}}
    full = fit(tiny_config(tmp_path / "a", **over), test=False)
    cfg = tiny_config(tmp_path / "b", **over)
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(cfg, callbacks=[Interrupt(2)], test=False)
    assert read_checkpoint(Path(cfg.run_dir) / "train" / "checkpoints" / "last.ckpt")["epoch"] == 1
    fit(cfg, resume=True, test=False)
    # nothing is lost: the interrupted segment's logs are kept beside the resumed ones
    logs = read_logs(Path(cfg.run_dir) / "train")
    trained = logs.dropna(subset=["train/loss_epoch"])
    assert trained["epoch"].astype(int).tolist() == [0, 1, 2, 3]
    a = read_checkpoint(full.run_dir / "train" / "checkpoints" / "last.ckpt")
    b = read_checkpoint(Path(cfg.run_dir) / "train" / "checkpoints" / "last.ckpt")
    assert a["global_step"] == b["global_step"]
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k


def test_fresh_fit_refuses_a_used_run_dir(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, trainer={"max_epochs": 1})
    fit(cfg, test=False)
    with pytest.raises(RunError, match="already holds a run"):
        fit(cfg, test=False)
    fit(cfg, test=False, overwrite=True)


def test_checkpoint_from_another_architecture_is_refused(tmp_path: Path) -> None:
    res = fit(tiny_config(tmp_path / "a", trainer={"max_epochs": 1}), test=False)
    other = tiny_config(tmp_path / "b", model={"fusion": {"name": "gmu", "out_dim": 8}})
    with pytest.raises(CheckpointMismatchError, match="another architecture.*missing from checkpoint: fusion.gate"):
        evaluate(other, res.best_checkpoint)
    wider = tiny_config(tmp_path / "c", model={"default_encoder": {"name": "mlp", "hidden": [33], "out_dim": 16}})
    with pytest.raises(CheckpointMismatchError, match="shape differs"):
        evaluate(wider, res.best_checkpoint)


def test_corrupt_and_empty_checkpoints(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path)
    (tmp_path / "empty.ckpt").write_bytes(b"")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(DataError, match="empty"):
        evaluate(cfg, tmp_path / "empty.ckpt")
    with pytest.raises(DataError, match="cannot read checkpoint"):
        evaluate(cfg, tmp_path / "junk.ckpt")
    with pytest.raises(DataError, match="not found"):
        evaluate(cfg, tmp_path / "none.ckpt")


def test_nan_input_stops_training_with_a_named_error(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path)
    dm, task, model = prepare(cfg)
    dm.splits["train"].inputs["kar"][3, 0] = float("nan")
    module = MultimodalModule(model, task, cfg.optim, "supervised", dm.schema)
    trainer, _ = make_trainer(cfg, tmp_path / "t", "val/acc", "max", 1)
    with pytest.raises(BatchError, match="modality 'kar': 1 present sample\\(s\\) contain NaN"):
        trainer.fit(module, datamodule=dm)


class RecordBatches(L.Callback):
    def __init__(self) -> None:
        self.finite: list[bool] = []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: object, batch_idx: int) -> None:
        self.finite.append(batch.finite)  # type: ignore[attr-defined]


def test_batches_reach_the_step_with_their_values_already_known_finite(tmp_path: Path) -> None:
    """The dataset is scanned for NaN once; moving its batches to the device keeps that,
    so the per-step check is structural only (a NaN is still caught: the test above)."""
    rec = RecordBatches()
    fit(tiny_config(tmp_path, trainer={"max_epochs": 1}), callbacks=[rec])
    assert rec.finite and all(rec.finite)


class RecordGroupAtTeardown(L.Callback):
    """Writes, per spawned worker and stage, whether the process group is still up once the
    trainer's own callbacks have torn down (this one runs after them)."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        up = torch.distributed.is_initialized()
        (self.out / f"{getattr(stage, 'value', stage)}-{trainer.global_rank}-{os.getpid()}").write_text(str(up))


@pytest.mark.slow
def test_two_process_ddp_spawn_fit(tmp_path: Path) -> None:
    cfg = tiny_config(
        tmp_path,
        trainer={"max_epochs": 2, "accelerator": "cpu", "devices": 2, "strategy": "ddp_spawn"},
    )
    (tmp_path / "groups").mkdir()
    res = fit(cfg, callbacks=[RecordGroupAtTeardown(tmp_path / "groups")])
    assert res.trainer.world_size == 2
    assert math.isfinite(res.val["val/loss"]) and res.test["test/acc"] > 0.5
    # every spawned worker left its group before exiting (a live gloo group aborted a worker at exit in CI)
    records = sorted((tmp_path / "groups").iterdir())
    assert {r.name.split("-")[0] for r in records} == {"fit", "validate", "test"} and len(records) == 6
    assert all(r.read_text() == "False" for r in records)


class SpoilLastPretrainEpoch(L.Callback):
    """Scales the decoders' weights at the start of the last pretraining epoch, so
    that epoch's validation refiner loss is worse than an earlier one's."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if pl_module.stage == "pretrain" and trainer.current_epoch == trainer.max_epochs - 1:
            with torch.no_grad():
                for p in pl_module.model.decoders.parameters():
                    p.mul_(50.0)


def test_pretraining_keeps_its_best_epoch(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, model={"refiner": {}}, pretrain={"epochs": 3}, trainer={"max_epochs": 1})
    fit(cfg, callbacks=[SpoilLastPretrainEpoch()], test=False)
    pdir = Path(cfg.run_dir) / "pretrain"
    best = read_checkpoint(next((pdir / "checkpoints").glob("best-*.ckpt")))
    last = read_checkpoint(pdir / "checkpoints" / "last.ckpt")
    assert best["epoch"] < last["epoch"] == 2
    kept = load_file(pdir / "model.safetensors")
    for k, v in kept.items():
        assert torch.equal(v, best["state_dict"][f"model.{k}"]), k


def test_joint_semi_supervised_mode_uses_unlabelled_batches_for_refiner_terms_only(tmp_path: Path) -> None:
    over = {"data": {"labelled_fraction": 0.1}, "trainer": {"max_epochs": 2}}
    cfg = tiny_config(tmp_path / "j", model={"refiner": {"unlabelled": "joint", "ms": {"weight": 0.1}}}, **over)
    dm, task, model = prepare(cfg)
    loader = dm.train_dataloader()
    pair = next(iter(loader))[0] if isinstance(next(iter(loader)), tuple) else next(iter(loader))
    assert pair["unlabelled"].labels is None and pair["labelled"].labels is not None
    assert len(dm.unlabelled_train()) + len(dm.labelled_train()) == len(dm.splits["train"])
    module = MultimodalModule(model, task, cfg.optim, "supervised", dm.schema)
    module._joint_step(pair)
    logged = {f"train/{k}" for k in module.sums["train"]}
    unlabelled = {k for k in logged if k.startswith("train/unlabelled_")}
    assert unlabelled == {"train/unlabelled_refiner_fou", "train/unlabelled_refiner_kar"}  # no task, no MS term
    assert {"train/task", "train/ms", "train/refiner_fou"} <= logged
    joint = fit(cfg, test=False)
    ignore = fit(tiny_config(tmp_path / "i", model={"refiner": {"ms": {"weight": 0.1}}}, **over), test=False)
    steps = read_checkpoint(Path(joint.run_dir) / "train" / "checkpoints" / "last.ckpt")["global_step"]
    assert steps == read_checkpoint(Path(ignore.run_dir) / "train" / "checkpoints" / "last.ckpt")["global_step"]  # same budget
    w_joint, w_ignore = load_file(Path(joint.run_dir) / "model.safetensors"), load_file(Path(ignore.run_dir) / "model.safetensors")
    assert any(not torch.equal(w_joint[k], w_ignore[k]) for k in w_joint if "encoders" in k)  # the unlabelled data moved them
    with pytest.raises(ConfigError, match="needs unlabelled training samples"):
        prepare(tiny_config(tmp_path / "x", model={"refiner": {"unlabelled": "joint"}}))


def test_training_terms_are_logged_as_batch_weighted_epoch_means(tmp_path: Path) -> None:
    """Step values are logged on the logger's steps only; each epoch's value is the
    batch-size-weighted mean of its steps (as Lightning's own epoch reduction)."""
    res = fit(tiny_config(tmp_path, model={"refiner": {}}, trainer={"max_epochs": 2, "log_every_n_steps": 1}), test=False)
    logs = read_logs(Path(res.run_dir) / "train")
    n = len(res.datamodule.labelled_train())
    sizes = [64] * (n // 64) + ([n % 64] if n % 64 else [])
    for epoch in (0, 1):
        rows = logs[logs["epoch"] == epoch]
        for k in ("loss", "task", "refiner_fou"):
            steps = rows[f"train/{k}_step"].dropna().tolist()
            assert len(steps) == len(sizes)
            mean = sum(s * w for s, w in zip(steps, sizes)) / n
            assert rows[f"train/{k}_epoch"].dropna().item() == pytest.approx(mean, rel=1e-5)
    sparse = fit(tiny_config(tmp_path / "s", trainer={"max_epochs": 1, "log_every_n_steps": 3}), test=False)
    steps = read_logs(Path(sparse.run_dir) / "train")["train/loss_step"].dropna()
    assert len(steps) == len(sizes) // 3  # written on every third step only


def test_validation_terms_and_metrics_are_epoch_values_over_every_sample(tmp_path: Path) -> None:
    """``val/{term}``: the batch-size-weighted mean of the batches' values; ``val/acc`` and
    ``test/acc``: accuracy over every sample, not a mean of per-batch accuracies."""
    res = fit(tiny_config(tmp_path, model={"refiner": {}}, trainer={"max_epochs": 1}))
    module, dm = res.module, res.datamodule
    module.eval()
    for split in ("val", "test"):
        sums: dict[str, float] = {}
        right = n = 0
        with torch.no_grad():
            for batch in dm.loader(dm.splits[split]):
                terms, out = module.loss_terms(batch)
                for k, v in {**terms, "loss": sum(terms.values())}.items():
                    sums[k] = sums.get(k, 0.0) + float(v) * batch.size
                right += int((out.logits.argmax(1) == batch.labels).sum())
                n += batch.size
        logged = res.trainer.validate(module, dataloaders=dm.loader(dm.splits[split]), verbose=False)[0]
        for k, v in sums.items():
            assert logged[f"val/{k}"] == pytest.approx(v / n, rel=1e-5), k
        assert logged["val/acc"] == pytest.approx(right / n, abs=1e-6)
        if split == "test":
            assert res.test["test/acc"] == pytest.approx(right / n, abs=1e-6)

