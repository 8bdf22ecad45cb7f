"""Absent values never reach arithmetic: NaN or Inf stored in a sample whose
modality is marked absent changes nothing (Reliability promise 3)."""

from __future__ import annotations

import math

import pytest
import torch

from mmrefine.data import DataSettings, MultimodalDataModule, TensorMultimodalDataset
from mmrefine.encoders import MLPEncoder
from mmrefine.fusion import FUSIONS
from mmrefine.fusion.tabular import TabularCombiner
from mmrefine.models import ARCHITECTURES, FusionModel, MLPHead
from mmrefine.refine import ProgressiveFusion, Refiner
from mmrefine.training import Classification, MultimodalModule
from mmrefine.training.engine import make_trainer
from tests.conftest import tiny_config

B = 8
VEC = {"a": (6,), "b": (5,)}
SEQ = {"a": (4, 6), "b": (3, 5), "c": (7,)}


def poisoned(shapes: dict, absent_rows: slice = slice(0, 4)) -> tuple[dict, dict, dict]:
    """Clean inputs, the same inputs with NaN/Inf in b's absent rows, and the mask."""
    g = torch.Generator().manual_seed(0)
    clean = {m: torch.randn(B, *s, generator=g) for m, s in shapes.items()}
    mask = {m: torch.ones(B, dtype=torch.bool) for m in shapes}
    mask["b"][absent_rows] = False
    dirty = {m: x.clone() for m, x in clean.items()}
    dirty["b"][absent_rows] = float("nan")
    dirty["b"][1] = float("inf")
    return clean, dirty, mask


def fusion_model(fusion: str) -> FusionModel:
    torch.manual_seed(0)
    enc = {m: MLPEncoder(s, out_dim=4, hidden=[8]) for m, s in VEC.items()}
    spec: dict = {"name": fusion}
    if issubclass(FUSIONS.get(fusion), TabularCombiner):  # a text + tabular combiner: 'a' is the text, 'b' categorical
        spec["categorical"] = ["b"]
    fuse = FUSIONS.build(spec, provided={"in_dims": {m: 4 for m in VEC}})
    return FusionModel(enc, fuse, MLPHead(fuse.out_dim, 3))


def assert_same_and_finite(model: torch.nn.Module, shapes: dict) -> None:
    clean, dirty, mask = poisoned(shapes)
    model.eval()
    ref, out = model(clean, mask), model(dirty, mask)
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.fused).all()
    assert torch.allclose(out.logits, ref.logits, atol=1e-6)
    for m, f in out.features.items():
        assert torch.isfinite(f).all(), m


@pytest.mark.parametrize("fusion", FUSIONS.names())
def test_every_fusion_model_ignores_nan_in_absent_samples(fusion: str) -> None:
    assert_same_and_finite(fusion_model(fusion), VEC)


def test_progressive_fusion_and_refiner_losses_ignore_nan_in_absent_samples() -> None:
    model = Refiner(ProgressiveFusion(fusion_model("gmu"), VEC, steps=3), loss="mse", ms={"weight": 0.1})
    assert_same_and_finite(model, VEC)
    _, dirty, mask = poisoned(VEC)
    model.train()
    out = model(dirty, mask)
    terms = model.auxiliary_losses(out, mask, torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
    total = sum(terms.values())
    assert math.isfinite(total.item())
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", ["mult", "ucrn", "early_fusion_transformer"])
def test_architectures_ignore_nan_in_absent_samples(name: str) -> None:
    torch.manual_seed(0)
    spec = {"mult": {"d": 8, "heads": 2, "layers": 1, "fusion": "gmu"}, "ucrn": {"d": 8, "heads": 2, "layers": 1, "cross_layers": 1},
            "early_fusion_transformer": {"d": 8, "heads": 2, "layers": 1}}[name]
    model = ARCHITECTURES.build({"name": name, **spec}, provided={"input_shapes": SEQ, "out_dim": 3})
    assert_same_and_finite(model, SEQ)


class Poisoned(MultimodalDataModule):
    """Random 3-class data where half of modality b is absent; ``poison`` stores NaN
    (and one Inf) in those absent samples, otherwise zeros."""

    def __init__(self, poison: bool) -> None:
        super().__init__(DataSettings(batch_size=32))
        self.poison = poison

    def load(self) -> dict[str, TensorMultimodalDataset]:
        g = torch.Generator().manual_seed(0)
        n = 300
        y = torch.randint(0, 3, (n,), generator=g)
        x = {"a": torch.randn(n, 6, generator=g) + 2 * y[:, None], "b": torch.randn(n, 5, generator=g) - 2 * y[:, None]}
        mask = {m: torch.ones(n, dtype=torch.bool) for m in x}
        mask["b"][::2] = False
        x["b"][::2] = float("nan") if self.poison else 0.0
        if self.poison:
            x["b"][2, 0] = float("inf")
        ds = TensorMultimodalDataset(x, y, mask)
        return {"train": ds.subset(range(200)), "val": ds.subset(range(200, 250)), "test": ds.subset(range(250, 300))}

    @property
    def num_outputs(self) -> int:
        return 3


def test_training_on_nan_in_absent_samples_equals_training_on_zeros(tmp_path) -> None:
    """A Refiner with the MS loss trained through Lightning: final weights and test
    metrics are those of the same data with zeros in the absent samples."""
    results = {}
    for poison in (True, False):
        torch.manual_seed(0)
        dm = Poisoned(poison)
        cfg = tiny_config(tmp_path)
        module = MultimodalModule(Refiner(fusion_model("gmu"), ms={"weight": 0.1}), Classification(3), cfg.optim, schema=dm.schema)
        trainer, _ = make_trainer(cfg, tmp_path / str(poison), "val/acc", "max", 3)
        trainer.fit(module, datamodule=dm)
        results[poison] = (module.state_dict(), trainer.test(module, datamodule=dm, verbose=False)[0])
    (w_nan, m_nan), (w_zero, m_zero) = results[True], results[False]
    assert all(torch.isfinite(v).all() for v in w_nan.values())
    assert all(torch.equal(w_nan[k], w_zero[k]) for k in w_zero)
    assert m_nan == m_zero and math.isfinite(m_nan["test/acc"])


@pytest.mark.parametrize("fusion", FUSIONS.names())
def test_all_modalities_absent_and_empty_batches(fusion: str) -> None:
    """Every modality absent gives finite outputs (the head's bias); an empty batch gives empty outputs."""
    model = Refiner(fusion_model(fusion), ms={"weight": 0.1}).eval()
    x = {m: torch.full((4, *s), float("nan")) for m, s in VEC.items()}
    mask = {m: torch.zeros(4, dtype=torch.bool) for m in VEC}
    out = model(x, mask)
    assert torch.isfinite(out.logits).all() and torch.allclose(out.logits, out.logits[:1].expand_as(out.logits))
    assert all(torch.isfinite(v) for v in model.auxiliary_losses(out, mask, torch.tensor([0, 1, 2, 0])).values())
    empty = model({m: torch.zeros(0, *s) for m, s in VEC.items()})
    assert empty.logits.shape == (0, 3)
    assert all(torch.isfinite(v) for v in model.auxiliary_losses(empty, None, torch.zeros(0, dtype=torch.long)).values())
