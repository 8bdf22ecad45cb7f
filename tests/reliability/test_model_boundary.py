"""Bad input to a model's forward is a BatchError naming the modality, never a
silent broadcast or a raw torch error."""

from __future__ import annotations

import pytest
import torch

from mmrefine.core.errors import BatchError
from mmrefine.encoders import MLPEncoder
from mmrefine.fusion import GMUFusion
from mmrefine.models import ARCHITECTURES, FusionModel, MLPHead
from mmrefine.refine import ProgressiveFusion, Refiner


def model() -> FusionModel:
    torch.manual_seed(0)
    return FusionModel({"a": MLPEncoder((6,), out_dim=4), "b": MLPEncoder((5,), out_dim=4)}, GMUFusion({"a": 4, "b": 4}, out_dim=4),
                       MLPHead(4, 3))


def x(b_a: int = 8, b_b: int = 8) -> dict[str, torch.Tensor]:
    return {"a": torch.randn(b_a, 6), "b": torch.randn(b_b, 5)}


def ones(b: int = 8) -> torch.Tensor:
    return torch.ones(b, dtype=torch.bool)


CASES = {
    "batch sizes differ": (lambda: x(8, 1), None, "disagree on the batch size"),
    "mask of length 1": (x, lambda: {"a": ones(1), "b": ones()}, "mask of 'a' must be a bool tensor of shape \\(8,\\)"),
    "float mask": (x, lambda: {"a": torch.full((8,), 0.5), "b": ones()}, "mask of 'a' must be a bool tensor"),
    "int mask": (x, lambda: {"a": torch.full((8,), 2), "b": ones()}, "mask of 'a' must be a bool tensor"),
    "mask misses a key": (x, lambda: {"a": ones()}, "mask must have the modalities .*missing \\['b'\\]"),
    "float64 input": (lambda: {"a": torch.randn(8, 6, dtype=torch.float64), "b": torch.randn(8, 5)}, None, "'a' is torch.float64"),
    "wrong width": (lambda: {"a": torch.randn(8, 7), "b": torch.randn(8, 5)}, None, "'a' must be shaped \\(B, \\*\\(6,\\)\\)"),
    "missing modality": (lambda: {"a": torch.randn(8, 6)}, None, "missing \\['b'\\]"),
    "extra modality": (lambda: {**x(), "c": torch.randn(8, 2)}, None, "unknown \\['c'\\]"),
}


@pytest.mark.parametrize("wrap", ["base", "progressive", "refiner"])
@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_a_batch_error_naming_the_modality(case: str, wrap: str) -> None:
    inputs, mask, message = CASES[case]
    m = model()
    if wrap != "base":
        m = ProgressiveFusion(m, {"a": (6,), "b": (5,)})
    if wrap == "refiner":
        m = Refiner(m)
    with pytest.raises(BatchError, match=message):
        m(inputs(), mask() if mask else None)


@pytest.mark.parametrize("name", ["mult", "ucrn", "early_fusion_transformer"])
def test_architectures_check_shapes_and_dtype(name: str) -> None:
    shapes = {"a": (4, 6), "b": (3, 5)}
    spec = {"name": name, "d": 8, "heads": 2, "layers": 1}
    m = ARCHITECTURES.build(spec, provided={"input_shapes": shapes, "out_dim": 2})
    with pytest.raises(BatchError, match="'b' must be shaped"):
        m({"a": torch.randn(2, 4, 6), "b": torch.randn(2, 3, 4)})
    with pytest.raises(BatchError, match="'a' is torch.float64"):
        m({"a": torch.randn(2, 4, 6, dtype=torch.float64), "b": torch.randn(2, 3, 5)})
