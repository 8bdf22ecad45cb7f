import math

import pytest
import torch

from mmrefine.losses import ContrastiveRefinerLoss, CosineRefinerLoss, MSERefinerLoss

R = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
T = torch.tensor([[1.0, 1.0], [0.0, 1.0]])


def test_cosine_by_hand() -> None:
    # cos(R0, T0) = 1/sqrt(2); cos(R1, T1) = 1
    expected = ((1 - 1 / math.sqrt(2)) + 0.0) / 2
    assert CosineRefinerLoss()(R, T).item() == pytest.approx(expected)


def test_mse_by_hand() -> None:
    # squared differences: (0, 1, 0, 1) -> mean 0.5
    assert MSERefinerLoss()(R, T).item() == pytest.approx(0.5)


def test_contrastive_by_hand() -> None:
    # r[k, t] = cos(R_k, T_t): r00 = 1/sqrt2, r01 = 0, r10 = 1/sqrt2, r11 = 1
    # t=0: k=1 -> max(0, m + r10 - r00) ; t=1: k=0 -> max(0, m + r01 - r11)
    s = 1 / math.sqrt(2)
    for m in (0.0, 0.5):
        expected = (max(0.0, m + s - s) + max(0.0, m + 0 - 1)) / 2
        assert ContrastiveRefinerLoss(margin=m)(R, T).item() == pytest.approx(expected)


def test_contrastive_is_zero_for_well_separated_pairs() -> None:
    eye = torch.eye(4)
    assert ContrastiveRefinerLoss(margin=0.5)(eye, eye).item() == 0.0


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="must be equal"):
        CosineRefinerLoss()(torch.ones(2, 3), torch.ones(2, 4))
