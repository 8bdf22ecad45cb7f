import math

import numpy as np
import pytest
import torch
from scipy import stats

from mmrefine.core.errors import ConfigError
from mmrefine.data import TensorMultimodalDataset
from mmrefine.evaluation import (
    compare,
    confidence_interval,
    corrupt,
    mean_std,
    nonempty_subsets,
    percentage_drop,
    recovery_curve,
    recovery_error,
    relative_robustness,
    scale_unit,
    topk_retrieval,
    welch_t_test,
)


def test_welch_t_test_matches_scipy() -> None:
    a, b = [0.71, 0.74, 0.69, 0.73, 0.75], [0.66, 0.70, 0.64, 0.69]
    t, p = welch_t_test(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert t == pytest.approx(ref.statistic, rel=1e-10) and p == pytest.approx(ref.pvalue, rel=1e-8)
    assert math.isnan(welch_t_test([1.0], [2.0, 3.0])[1])


def test_confidence_interval_is_the_student_t_interval() -> None:
    m, half = confidence_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    # t_{0.975, 4} = 2.776445, s = sqrt(2.5), n = 5
    assert m == 3.0 and half == pytest.approx(2.776445 * math.sqrt(2.5) / math.sqrt(5), rel=1e-6)
    assert confidence_interval([1.0, 2.0, 3.0, 4.0, 5.0], level=0.5)[1] < half
    assert confidence_interval([0.7]) == (0.7, 0.0)
    with pytest.raises(ConfigError, match="level"):
        confidence_interval([1.0, 2.0], level=1.0)


def test_mean_std_and_compare() -> None:
    m, s = mean_std([1.0, 2.0, 3.0])
    assert m == 2.0 and s == pytest.approx(1.0)
    rows = {r.name: r for r in compare({"base": [1.0, 1.1, 0.9], "new": [2.0, 2.1, 1.9]}, "base")}
    assert math.isnan(rows["base"].p_value) and rows["new"].p_value < 0.001 and rows["new"].n == 3
    with pytest.raises(ConfigError, match="baseline"):
        compare({"a": [1.0]}, "b")


def test_relative_robustness_on_hand_made_curves() -> None:
    levels = [0.0, 0.5, 1.0]
    # model minus baseline: 0, 0.1, 0.3 -> the paper's average over the grid: 0.4 / 3
    # (the trapezoid rule would give 0.125)
    assert relative_robustness(levels, [0.9, 0.8, 0.7], [0.9, 0.7, 0.4]) == pytest.approx(0.4 / 3)
    # an error metric (MSE): lower is better, so the sign flips
    assert relative_robustness(levels, [1.0, 1.2, 1.4], [1.0, 1.3, 1.7], higher_is_better=False) == pytest.approx(0.4 / 3)
    assert relative_robustness(levels, [0.5] * 3, [0.5] * 3) == 0.0
    with pytest.raises(ValueError, match="equally spaced"):
        relative_robustness([0.0, 0.2, 1.0], [1, 1, 1], [1, 1, 1])
    assert scale_unit({"a": -0.2, "b": 0.0, "c": 0.3}) == pytest.approx({"a": 0.0, "b": 0.4, "c": 1.0})


def test_percentage_drop_and_subsets() -> None:
    assert percentage_drop(0.8, 0.6) == pytest.approx(0.25)
    assert nonempty_subsets(["l", "a", "v"]) == [("l",), ("a",), ("v",), ("l", "a"), ("l", "v"), ("a", "v"), ("l", "a", "v")]


def test_corruptions_are_seeded_and_leveled() -> None:
    ds = TensorMultimodalDataset({"a": torch.randn(200, 50), "b": torch.randn(200, 3)}, torch.zeros(200))
    assert torch.equal(corrupt(ds, "a", "gaussian", 0.0).inputs["a"], ds.inputs["a"])
    g1, g2 = corrupt(ds, "a", "gaussian", 0.5, seed=3), corrupt(ds, "a", "gaussian", 0.5, seed=3)
    assert torch.equal(g1.inputs["a"], g2.inputs["a"]) and torch.equal(g1.inputs["b"], ds.inputs["b"])
    noise = g1.inputs["a"] - ds.inputs["a"]
    assert noise.std().item() == pytest.approx(0.5 * ds.inputs["a"].std().item(), rel=0.05)
    zeroed = (corrupt(ds, "a", "bernoulli_zero", 0.3).inputs["a"] == 0).float().mean().item()
    assert zeroed == pytest.approx(0.3, abs=0.02)
    added = corrupt(ds, "a", "bernoulli_add", 0.5, seed=1).inputs["a"] - ds.inputs["a"]
    sigma = ds.inputs["a"].std().item()
    assert set(torch.round(added / sigma, decimals=4).unique().tolist()) == {0.0, 1.0}
    assert (added > 0).float().mean().item() == pytest.approx(0.5, abs=0.02)
    with pytest.raises(ConfigError, match="ambiguous"):
        corrupt(ds, "a", "bernoulli", 0.1)
    with pytest.raises(ConfigError, match="corruption must be one of"):
        corrupt(ds, "a", "salt", 0.1)


def test_corrupting_compact_uint8_inputs_works_in_the_served_float_scale() -> None:
    spec = torch.randint(0, 256, (100, 8, 8), dtype=torch.uint8)  # e.g. AV-MNIST spectrograms
    ds = TensorMultimodalDataset({"audio": spec}, torch.zeros(100))
    clean = ds.__getitems__(list(range(100))).inputs["audio"]
    noisy = corrupt(ds, "audio", "gaussian", 0.5, seed=0).inputs["audio"]
    assert noisy.dtype == torch.float32
    assert (noisy - clean).std().item() == pytest.approx(0.5 * clean.std().item(), rel=0.05)


def test_topk_retrieval_on_hand_made_bank() -> None:
    bank = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.7, 0.7, 0.0], [0.0, 0.0, 1.0]])
    labels = torch.tensor([0, 1, 2, 3])
    queries = torch.tensor([[1.0, 0.1], [0.1, 1.0]])  # zero-padded to width 3
    # query 0: nearest are bank 0 (class 0), then 2; query 1: bank 1 (class 1), then 2
    res = topk_retrieval(bank, labels, queries, torch.tensor([2, 1]), ks=(1, 2, 5))
    assert res == {1: 0.5, 2: 1.0, 5: 1.0}
    with pytest.raises(ValueError, match="pass a projection"):
        topk_retrieval(bank, labels, torch.ones(1, 4), torch.tensor([0]))


def test_latent_graph_recovery_exact_at_k_equals_m_and_falls_with_k() -> None:
    curve = recovery_curve(64, [8, 16, 32, 48, 63, 64])
    errors = list(curve.values())
    assert curve[64] < 1e-8
    assert all(a > b for a, b in zip(errors, errors[1:]))
    assert recovery_error(128, 128) < 1e-8
    # averaged over seeds, and at every feature width d
    assert recovery_curve(32, [16], seeds=3)[16] == pytest.approx(sum(recovery_error(32, 16, s) for s in range(3)) / 3)
    assert recovery_curve(32, [32], seeds=2, d=256)[32] < 1e-8


def test_the_recovered_adjacency_is_not_the_best_rank_k_approximation() -> None:
    """The docstring's claim: at k = m/2 a truncated SVD of A is far closer than the refiner's estimate."""
    from mmrefine.data.synthetic import latent_graph_problem

    a = latent_graph_problem(64, 32)["A"]
    u, sv, vt = np.linalg.svd(a)
    best = np.linalg.norm((u[:, :32] * sv[:32]) @ vt[:32] - a) / np.linalg.norm(a)
    assert best < 0.3 < 0.7 < recovery_error(64, 32)
