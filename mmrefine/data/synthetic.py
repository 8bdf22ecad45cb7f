"""Seeded synthetic tasks of the papers.

``lattice`` — the "fuse it or lose it" task. Modality ``function``
holds a smooth random function sampled on a lattice, ``x_d = f(d / D)`` for
d = 0..D-1, a new function per sample::

    f(t) = sigmoid( sum_{j=1..J} (a_j / j) sin(2 pi j t + phi_j) ),  a_j ~ N(0, 4), phi_j ~ U[0, 2 pi)

Modality ``position`` holds the sinusoidal position embedding (width P) of a
random lattice index l. The label is the first non-zero decimal digit of
``x_l`` (1..9, stored as 0..8): easy when the two are combined early, hard when
each modality is compressed before fusion.

``generative`` — Progressive Fusion's (Shankar et al.) generative regression model, for latent width d::

    Z ~ U[-2.5, 2.5]^d
    X_1 = lReLU(W_1 Z) - 2 |eta| sin(W_2 Z) + sigma_1 e_1
    X_2 = sin(W_2 Z) + sigma_2 e_2
    Y   = W_y Z + sigma_y e_y                  (e ~ N(0, I), W ~ N(0, 1/d))

``latent_graph_problem`` — the Refiner paper's (Sankaran et al.) linear latent-graph setting (Theorem 4.1,
appendix A.6): a symmetric 0/1 adjacency A with ones on the diagonal, features
F (m x d), fusion W (k x m) and the fused embedding ``E = W A F``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mmrefine.core.errors import ConfigError
from mmrefine.core.layers import sinusoidal_positions
from mmrefine.data.datamodule import MultimodalDataModule
from mmrefine.data.dataset import TensorMultimodalDataset
from mmrefine.data.registry import DATASETS
from mmrefine.data.settings import DataSettings


def first_nonzero_digit(x: np.ndarray) -> np.ndarray:
    """First non-zero decimal digit of |x| (x != 0): 0.0347 -> 3, 0.52 -> 5."""
    a = np.abs(x)
    if np.any(a == 0):
        raise ValueError("first_nonzero_digit is undefined for 0")
    return np.floor(a / 10.0 ** np.floor(np.log10(a))).astype(np.int64)


def smooth_functions(n: int, points: int, rng: np.random.Generator, harmonics: int = 4) -> np.ndarray:
    t = np.arange(points) / points
    j = np.arange(1, harmonics + 1)
    a = rng.normal(0.0, 2.0, (n, harmonics)) / j
    phi = rng.uniform(0, 2 * np.pi, (n, harmonics))
    raw = np.einsum("nj,njt->nt", a, np.sin(2 * np.pi * j[None, :, None] * t[None, None, :] + phi[..., None]))
    return 1.0 / (1.0 + np.exp(-raw))


class _Synthetic(MultimodalDataModule):
    """Splits of sizes ``n_train`` / ``n_val`` / ``n_test`` drawn from one seeded generator."""

    default_settings = DataSettings(batch_size=128)

    def __init__(self, n_train: int, n_val: int, n_test: int, seed: int, modalities: list[str] | None,
                 settings: DataSettings | None) -> None:
        super().__init__(settings)
        if self.root is not None:
            raise ConfigError(f"data.root: the {type(self).__name__} data are generated from a seed and read no files; remove root")
        self.keep = modalities
        if min(n_train, n_val, n_test) < 1:
            raise ConfigError("synthetic split sizes must be positive")
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}
        self.seed = seed

    def generate(self, n: int, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
        raise NotImplementedError

    def load(self) -> dict[str, TensorMultimodalDataset]:
        rng = np.random.default_rng(self.seed)
        self.setup_parameters(rng)
        n = sum(self.sizes.values())
        x, y = self.generate(n, rng)
        if self.keep is not None:
            unknown = [m for m in self.keep if m not in x]
            if unknown or not self.keep:
                raise ConfigError(f"data.modalities: unknown {unknown}; choose a non-empty subset of {list(x)}")
            x = {m: x[m] for m in self.keep}
        out, start = {}, 0
        for name, size in self.sizes.items():
            sl = slice(start, start + size)
            out[name] = TensorMultimodalDataset(
                {m: torch.as_tensor(v[sl], dtype=torch.float32) for m, v in x.items()},
                torch.as_tensor(y[sl], dtype=torch.long if y.dtype.kind == "i" else torch.float32),
            )
            start += size
        return out

    def setup_parameters(self, rng: np.random.Generator) -> None:
        """Draw the task's fixed parameters (shared by all splits)."""


@DATASETS.register("lattice")
class LatticeTask(_Synthetic):
    """See module docstring (task ``lattice``); 9 classes.

    Args:
        points: lattice size D (width of ``function``).
        position_dim: width P of ``position``.
        harmonics: sine harmonics of each random smooth function.
        n_train: training samples.
        n_val: validation samples.
        n_test: test samples.
        seed: seed of the generator (the data, not the training).
        modalities: keep only these modalities.
        settings: loader settings shared by every dataset (:class:`~mmrefine.data.DataSettings`).
    """

    def __init__(self, points: int = 32, position_dim: int = 16, harmonics: int = 4, n_train: int = 20000, n_val: int = 2000,
                 n_test: int = 5000, seed: int = 0, modalities: list[str] | None = None,
                 settings: DataSettings | None = None) -> None:
        super().__init__(n_train, n_val, n_test, seed, modalities, settings)
        self.points, self.position_dim, self.harmonics = points, position_dim, harmonics

    @property
    def num_outputs(self) -> int:
        return 9

    def generate(self, n: int, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
        f = smooth_functions(n, self.points, rng, self.harmonics)
        idx = rng.integers(0, self.points, n)
        pos = sinusoidal_positions(self.points, self.position_dim).numpy()[idx]
        y = first_nonzero_digit(f[np.arange(n), idx]) - 1
        self.positions = idx
        return {"function": f, "position": pos}, y


@DATASETS.register("generative")
class GenerativeTask(_Synthetic):
    """See module docstring (task ``generative``); regression with one output.

    Args:
        latent_dim: width d of ``Z``.
        dim1: width of ``X_1``.
        dim2: width of ``X_2`` (must equal ``dim1``).
        eta: weight of the shared sine term in ``X_1``.
        sigma1: noise of ``X_1``.
        sigma2: noise of ``X_2``.
        sigma_y: noise of ``Y``.
        n_train: training samples.
        n_val: validation samples.
        n_test: test samples.
        seed: seed of the generator (the data, not the training).
        modalities: keep only these modalities.
        settings: loader settings shared by every dataset (:class:`~mmrefine.data.DataSettings`).
    """

    task = "regression"

    def __init__(self, latent_dim: int = 8, dim1: int = 16, dim2: int = 16, eta: float = 0.5, sigma1: float = 0.1,
                 sigma2: float = 0.5, sigma_y: float = 0.1, n_train: int = 5000, n_val: int = 1000, n_test: int = 2000,
                 seed: int = 0, modalities: list[str] | None = None, settings: DataSettings | None = None) -> None:
        super().__init__(n_train, n_val, n_test, seed, modalities, settings)
        self.d, self.dim1, self.dim2 = latent_dim, dim1, dim2
        self.eta, self.sigma1, self.sigma2, self.sigma_y = eta, sigma1, sigma2, sigma_y

    @property
    def num_outputs(self) -> int:
        return 1

    def setup_parameters(self, rng: np.random.Generator) -> None:
        s = 1 / math.sqrt(self.d)
        self.w1 = rng.normal(0, s, (self.dim1, self.d))
        self.w2 = rng.normal(0, s, (self.dim1, self.d))
        self.wy = rng.normal(0, s, (1, self.d))
        if self.dim2 != self.dim1:
            raise ConfigError("generative: X_2 = sin(W_2 Z) shares W_2 with X_1, so dim2 must equal dim1")

    def generate(self, n: int, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
        z = rng.uniform(-2.5, 2.5, (n, self.d))
        s2 = np.sin(z @ self.w2.T)
        h = z @ self.w1.T
        x1 = np.where(h > 0, h, 0.01 * h) - 2 * abs(self.eta) * s2 + self.sigma1 * rng.standard_normal((n, self.dim1))
        x2 = s2 + self.sigma2 * rng.standard_normal((n, self.dim2))
        y = z @ self.wy.T + self.sigma_y * rng.standard_normal((n, 1))
        self.latent = z
        return {"x1": x1, "x2": x2}, y


def random_adjacency(m: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """Symmetric 0/1 matrix with ones on the diagonal, redrawn until well conditioned."""
    for _ in range(100):
        upper = np.triu(rng.random((m, m)) < p, 1)
        a = (upper | upper.T).astype(np.float64)
        np.fill_diagonal(a, 1.0)
        if np.linalg.cond(a) < 1e8:
            return a
    raise RuntimeError("could not draw a well-conditioned adjacency")


def latent_graph_problem(m: int, k: int, d: int | None = None, p: float = 0.5, seed: int = 0) -> dict[str, np.ndarray]:
    """``{"A", "F", "W", "E"}`` with ``E = W A F`` (see module docstring)."""
    rng = np.random.default_rng(seed)
    a = random_adjacency(m, p, rng)
    f = rng.standard_normal((m, d or 2 * m))
    w = rng.standard_normal((k, m))
    return {"A": a, "F": f, "W": w, "E": w @ a @ f}
