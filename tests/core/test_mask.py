"""zero_absent: absent samples set to zero by selection, the input itself when nothing is absent."""

from __future__ import annotations

import torch

from mmrefine.core.mask import zero_absent


def test_zero_absent_discards_what_absent_samples_held_nan_included() -> None:
    x = torch.randn(3, 2, 4)
    x[1] = float("nan")
    keep = torch.tensor([True, False, True])
    out = zero_absent(x, keep)
    assert torch.equal(out[1], torch.zeros(2, 4))
    assert torch.equal(out[0], x[0]) and torch.equal(out[2], x[2])
    assert x[1].isnan().all()  # the input is left as it was


def test_zero_absent_returns_the_input_itself_when_every_sample_is_present() -> None:
    x = torch.randn(5, 7, requires_grad=True)
    out = zero_absent(x, torch.ones(5, dtype=torch.bool))
    assert out is x  # no copy on the usual training batch
    out.sum().backward()
    assert torch.equal(x.grad, torch.ones(5, 7))


def test_zero_absent_gradient_is_zero_for_absent_samples() -> None:
    x = torch.randn(4, 3, requires_grad=True)
    zero_absent(x, torch.tensor([True, True, False, True])).sum().backward()
    assert torch.equal(x.grad[2], torch.zeros(3)) and torch.equal(x.grad[[0, 1, 3]], torch.ones(3, 3))
