import numpy as np
import pytest
import torch

from mmrefine.core.errors import ConfigError
from mmrefine.data.synthetic import GenerativeTask, LatticeTask, first_nonzero_digit, latent_graph_problem
from mmrefine.encoders.sequence import sinusoidal_positions


def test_first_nonzero_digit_by_hand() -> None:
    assert first_nonzero_digit(np.array([0.0347, 0.52, 0.9999, 0.1, 0.0009])).tolist() == [3, 5, 9, 1, 9]
    with pytest.raises(ValueError):
        first_nonzero_digit(np.array([0.0]))


def test_lattice_labels_follow_the_rule_and_are_seeded() -> None:
    dm = LatticeTask(points=16, position_dim=8, n_train=300, n_val=50, n_test=50, seed=3)
    train = dm.splits["train"]
    f, pos = train.inputs["function"].double().numpy(), train.inputs["position"]
    idx = dm.positions[:300]
    pe = sinusoidal_positions(16, 8)
    assert torch.allclose(pos, pe[idx])  # the position modality encodes l
    assert np.array_equal(train.labels.numpy(), first_nonzero_digit(f[np.arange(300), idx]) - 1)
    assert train.labels.min() >= 0 and train.labels.max() <= 8 and dm.num_outputs == 9
    # smooth: neighbouring lattice values are close
    assert np.abs(np.diff(f, axis=1)).mean() < 0.2
    again = LatticeTask(points=16, position_dim=8, n_train=300, n_val=50, n_test=50, seed=3)
    assert torch.equal(again.splits["test"].inputs["function"], dm.splits["test"].inputs["function"])
    other = LatticeTask(points=16, position_dim=8, n_train=300, n_val=50, n_test=50, seed=4)
    assert not torch.equal(other.splits["test"].inputs["function"], dm.splits["test"].inputs["function"])


def test_generative_model_equations_without_noise() -> None:
    dm = GenerativeTask(eta=0.7, sigma1=0.0, sigma2=0.0, sigma_y=0.0, n_train=100, n_val=10, n_test=10)
    train = dm.splits["train"]
    z = dm.latent[:100]
    s2 = np.sin(z @ dm.w2.T)
    h = z @ dm.w1.T
    np.testing.assert_allclose(train.inputs["x2"].numpy(), s2, atol=1e-6)
    np.testing.assert_allclose(train.inputs["x1"].numpy(), np.where(h > 0, h, 0.01 * h) - 1.4 * s2, atol=1e-5)
    np.testing.assert_allclose(train.labels.numpy(), z @ dm.wy.T, atol=1e-5)
    assert (np.abs(z) <= 2.5).all() and dm.num_outputs == 1
    with pytest.raises(ConfigError, match="dim2 must equal dim1"):
        GenerativeTask(dim2=8).setup()


def test_latent_graph_problem_structure() -> None:
    p = latent_graph_problem(16, 8, seed=1)
    a = p["A"]
    assert np.array_equal(a, a.T) and np.all(np.diag(a) == 1) and set(np.unique(a)) <= {0.0, 1.0}
    assert p["F"].shape == (16, 32) and p["W"].shape == (8, 16)
    np.testing.assert_allclose(p["E"], p["W"] @ a @ p["F"])


def test_modality_subset() -> None:
    dm = LatticeTask(n_train=20, n_val=5, n_test=5, modalities=["position"])
    assert dm.schema.names == ["position"]
    with pytest.raises(ConfigError, match="unknown \\['pos'\\]"):
        LatticeTask(n_train=20, n_val=5, n_test=5, modalities=["pos"]).setup()
