"""Latent-graph recovery (Refiner, Sankaran et al., Theorem 4.1 and appendix A.6).

Linear fusion of features ``F`` (m x d) through an unknown adjacency ``A``
(m x m) and a fusion matrix ``W`` (k x m): ``E = W A F``. A linear refiner
``Gamma`` (m x k) that reconstructs ``F`` from ``E`` (least squares:
``Gamma = F E^+``) satisfies ``Gamma W A = I_m`` when ``k = m``, so
``A = (Gamma W)^{-1}``; for ``k < m`` the estimate is the pseudo-inverse
``Â = (Gamma W)^+``. That is *not* the best rank-k approximation of ``A`` (a
truncated SVD of ``A`` has a much smaller error, e.g. 0.23 against 0.76 at
k = m/2, m = 64): the refiner only sees ``A`` through the random ``W``. The
relative error ``||Â - A||_F / ||A||_F`` falls with k and is zero (to float
precision) at ``k = m``.

``A`` is a random symmetric 0/1 matrix with ones on the diagonal (density
``p``), ``F`` (m x d, default ``d = 2m``) and ``W`` standard normal.
:func:`recovery_curve` averages the error over ``seeds`` independent draws
of ``A``, ``F`` and ``W`` (the paper's appendix averages "across 5 randomly
chosen sets of weights" and over features).
"""

from __future__ import annotations

import numpy as np

from mmrefine.core.errors import ConfigError
from mmrefine.data.synthetic import latent_graph_problem


def recovery_error(m: int, k: int, seed: int = 0, p: float = 0.5, d: int | None = None) -> float:
    """Relative Frobenius error of the recovered adjacency (see module docstring)."""
    if not 1 <= k <= m:
        raise ConfigError(f"fused width k must be in [1, m={m}], got {k}")
    prob = latent_graph_problem(m, k, d, p, seed)
    a, f, w, e = prob["A"], prob["F"], prob["W"], prob["E"]
    gamma = f @ np.linalg.pinv(e)
    a_hat = np.linalg.pinv(gamma @ w)
    return float(np.linalg.norm(a_hat - a) / np.linalg.norm(a))


def recovery_curve(m: int, ks: list[int], seeds: int | list[int] = 1, d: int | None = None) -> dict[int, float]:
    """``{k: mean relative error}`` over weight seeds (``seeds`` draws, or these seeds)."""
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    return {k: sum(recovery_error(m, k, s, d=d) for s in seed_list) / len(seed_list) for k in ks}
