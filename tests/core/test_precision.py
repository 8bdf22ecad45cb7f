"""Mixed precision helpers: outputs back to fp32, losses with autocast off."""

from __future__ import annotations

from typing import NamedTuple

import torch

from mmrefine.core.output import ModelOutput
from mmrefine.core.precision import autocast_off, full_precision


class Internals(NamedTuple):
    gates: torch.Tensor
    index: torch.Tensor
    name: str


def test_full_precision_casts_every_low_precision_tensor_and_keeps_the_rest() -> None:
    leaf = torch.randn(4, 3, requires_grad=True)
    fp32 = torch.randn(4, 2)
    out = ModelOutput(
        logits=(leaf * 2).bfloat16(),
        fused=fp32,
        features={"a": torch.randn(4, 5).half(), "b": torch.randn(4, 5)},
        fusion=Internals(torch.randn(4, 2).bfloat16(), torch.arange(4), "gmu"),
        steps=(torch.randn(4, 2).bfloat16(), fp32),
    )
    got = full_precision(out)
    assert isinstance(got, ModelOutput) and isinstance(got.fusion, Internals)
    assert got.logits.dtype == got.features["a"].dtype == got.fusion.gates.dtype == got.steps[0].dtype == torch.float32
    assert got.fused is fp32 and got.steps[1] is fp32 and got.fusion.index.dtype == torch.int64 and got.fusion.name == "gmu"
    assert torch.equal(got.logits, out.logits.float())
    got.logits.sum().backward()  # the cast is differentiable: the gradient reaches the fp32 leaf
    assert leaf.grad is not None and torch.all(leaf.grad == 2)


def test_autocast_off_gives_fp32_products_only_inside() -> None:
    layer = torch.nn.Linear(8, 8)
    x = torch.randn(2, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(x).dtype == torch.bfloat16
        with autocast_off("cpu"):
            assert layer(x).dtype == torch.float32
        assert layer(x).dtype == torch.bfloat16
    with autocast_off("cpu"):  # autocast not on: nothing changes
        assert layer(x).dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
