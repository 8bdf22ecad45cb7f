"""Robustness to absent and noisy modalities.

* :func:`nonempty_subsets` enumerates every non-empty subset of modalities to
  keep (the runs that test with the others absent are in
  :mod:`mmrefine.experiments.sweep`).
* Corruptions at level ``s`` in [0, 1] (seeded), ``sigma = std(x)`` over the
  whole split:

  - ``gaussian``: ``x + s * sigma * N(0, 1)`` (Progressive Fusion's noise);
  - ``bernoulli_add``: ``x + sigma * B``, ``B ~ Bernoulli(s)`` per value: noise
    *added* with probability s. This is what UCRN (Guo et al., Sec. 4.4) describes
    ("noise that follows a Bernoulli distribution is randomly added on the
    entire modality features with a probability of noise presence 0.5"; the
    noise's scale is not given, so one standard deviation of the features);
  - ``bernoulli_zero``: each value zeroed with probability s (dropout-style
    masking; not the paper's protocol).

  A bare ``bernoulli`` is refused as ambiguous.
* :func:`relative_robustness`: Progressive Fusion's (Shankar et al., AAAI 2022,
  appendix "Robustness Computation") ``tau = int Perf(f, s) - Perf(b, s) ds``,
  computed as the paper says: the difference averaged over an equally spaced
  grid of noise levels, ``tau = mean_s (perf_f(s) - perf_b(s))``, negated for
  error metrics, so positive means more robust than the baseline;
  :func:`scale_unit` maps a set of such scores to [0, 1] as the paper does.
* :func:`percentage_drop`: UCRN's ``(full - degraded) / full``.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from mmrefine.core.errors import ConfigError

if TYPE_CHECKING:  # the scores below are plain numbers: a sweep's report loads no torch
    from mmrefine.data.dataset import TensorMultimodalDataset

CORRUPTIONS = ("gaussian", "bernoulli_add", "bernoulli_zero")


def nonempty_subsets(modalities: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset, smallest first."""
    return [c for k in range(1, len(modalities) + 1) for c in itertools.combinations(modalities, k)]


def corrupt(ds: TensorMultimodalDataset, modality: str, kind: str, level: float, seed: int = 0) -> TensorMultimodalDataset:
    """A copy of ``ds`` with ``modality`` corrupted (see module docstring)."""
    if kind == "bernoulli":
        raise ConfigError("corruption 'bernoulli' is ambiguous: 'bernoulli_add' adds noise with probability s "
                          "(UCRN's protocol), 'bernoulli_zero' zeroes values with probability s")
    if kind not in CORRUPTIONS:
        raise ConfigError(f"corruption must be one of {CORRUPTIONS}, got '{kind}'")
    if not 0.0 <= level <= 1.0:
        raise ConfigError(f"noise level must be in [0, 1], got {level}")
    if modality not in ds.inputs:
        raise ConfigError(f"cannot corrupt unknown modality '{modality}' (have {ds.modalities})")
    import torch

    from mmrefine.core.mask import zero_absent
    from mmrefine.data.dataset import TensorMultimodalDataset, decode

    g = torch.Generator().manual_seed(seed)
    x = decode(ds.inputs[modality])
    if kind == "gaussian":
        noisy = x + level * x.std() * torch.randn(x.shape, generator=g, dtype=x.dtype)
    elif kind == "bernoulli_add":
        noisy = x + x.std() * (torch.rand(x.shape, generator=g) < level).to(x.dtype)
    else:
        noisy = torch.where(torch.rand(x.shape, generator=g) < level, x.new_zeros(()), x)
    inputs = dict(ds.inputs)
    inputs[modality] = zero_absent(noisy, ds.mask[modality])  # absent samples stay zero
    return TensorMultimodalDataset(inputs, ds.labels, ds.mask)


def shuffle_modality(ds: TensorMultimodalDataset, modality: str, seed: int = 0) -> TensorMultimodalDataset:
    """A copy of ``ds`` where every sample's ``modality`` (input and presence)
    comes from another sample of the same split, drawn by a seeded permutation
    without fixed points: the modality becomes irrelevant to the label while its
    distribution is unchanged (the Refiner paper's, Sankaran et al., A.5)."""
    if modality not in ds.inputs:
        raise ConfigError(f"cannot shuffle unknown modality '{modality}' (have {ds.modalities})")
    n = len(ds)
    if n < 2:
        raise ConfigError("shuffling a modality needs at least two samples")
    import torch

    from mmrefine.data.dataset import TensorMultimodalDataset

    sigma = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    perm = torch.empty(n, dtype=torch.long)
    perm[sigma] = sigma.roll(-1)  # sample sigma_i takes sigma_{i+1}'s modality: one random cycle, no fixed point
    inputs, mask = dict(ds.inputs), dict(ds.mask)
    inputs[modality], mask[modality] = ds.inputs[modality][perm], ds.mask[modality][perm]
    return TensorMultimodalDataset(inputs, ds.labels, mask)


def relative_robustness(levels: Sequence[float], model: Sequence[float], baseline: Sequence[float], higher_is_better: bool = True) -> float:
    """``tau`` (see module docstring) over an equally spaced grid of ``levels``."""
    lv = np.asarray(levels, dtype=float)
    if len(lv) < 2 or not np.allclose(np.diff(lv), lv[1] - lv[0]):
        raise ConfigError("noise levels must be an equally spaced grid of at least two points")
    diff = np.asarray(model, dtype=float) - np.asarray(baseline, dtype=float)
    if not higher_is_better:
        diff = -diff
    return float(diff.mean())


def scale_unit(scores: Mapping[str, float]) -> dict[str, float]:
    """Min-max scale scores to [0, 1] (all 0.5 when they are equal)."""
    lo, hi = min(scores.values()), max(scores.values())
    return {k: (0.5 if hi == lo else (v - lo) / (hi - lo)) for k, v in scores.items()}


def percentage_drop(full: float, degraded: float) -> float:
    return (full - degraded) / full
