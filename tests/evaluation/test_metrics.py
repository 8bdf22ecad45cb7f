import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from mmrefine.evaluation import metrics as M

g = torch.Generator().manual_seed(0)
SCORES = torch.rand(40, 5, generator=g)
TARGET = (torch.rand(40, 5, generator=g) < 0.4).long()
TARGET[0] = 0  # a sample with no label (skipped by samples-AP, as in sklearn)
TARGET[:, 0] |= torch.tensor([1] + [0] * 39)  # every label appears at least once
TARGET[1:6, 0] = 1


def test_accuracy_by_hand() -> None:
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert M.accuracy(logits, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)


@pytest.mark.parametrize("average", ["micro", "macro"])
def test_f1_matches_sklearn(average) -> None:
    expected = skm.f1_score(TARGET.numpy(), (SCORES >= 0.5).numpy().astype(int), average=average, zero_division=0)
    assert M.f1(SCORES, TARGET, average) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("average", ["micro", "macro"])
def test_roc_auc_matches_sklearn(average) -> None:
    assert M.roc_auc(SCORES, TARGET, average) == pytest.approx(skm.roc_auc_score(TARGET.numpy(), SCORES.numpy(), average=average), rel=1e-5)
    b = TARGET[:, 1]
    assert M.roc_auc(SCORES[:, 1], b) == pytest.approx(skm.roc_auc_score(b.numpy(), SCORES[:, 1].numpy()), rel=1e-5)


@pytest.mark.parametrize("average", ["micro", "macro", "samples"])
def test_average_precision_matches_sklearn(average) -> None:
    t, s = TARGET.numpy(), SCORES.numpy()
    if average == "samples":
        keep = t.any(1)
        t, s = t[keep], s[keep]
    expected = skm.average_precision_score(t, s, average=average)
    assert M.average_precision(SCORES, TARGET, average) == pytest.approx(expected, rel=1e-5)


def test_regression_metrics() -> None:
    p, y = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.0, 3.0, 2.0])
    assert M.mae(p, y) == pytest.approx(1.0)
    assert M.mse(p, y) == pytest.approx(5 / 3)
    assert M.pearson(p, y) == pytest.approx(np.corrcoef(p.numpy(), y.numpy())[0, 1], rel=1e-6)


def test_sentiment_accuracies_by_hand() -> None:
    pred = torch.tensor([2.6, -0.4, 0.2, -3.7, 0.0])
    y = torch.tensor([3.0, 0.0, -0.6, -2.6, 1.2])
    # non-0 acc-2 drops y == 0: pairs (2.6,3) ok, (0.2,-0.6) wrong, (-3.7,-2.6) ok, (0.0,1.2) wrong -> 2/4
    assert M.acc2(pred, y) == pytest.approx(0.5)
    # >= 0 convention: (+,+) ok, (-,+) wrong, (+,-) wrong, (-,-) ok, (+,+) ok -> 3/5
    assert M.acc2(pred, y, exclude_zero=False) == pytest.approx(0.6)
    # rounded clipped: 3=3, -0=0, 0 vs -1, -3=-3, 0 vs 1 -> 3/5
    assert M.acc7(pred, y) == pytest.approx(0.6)
