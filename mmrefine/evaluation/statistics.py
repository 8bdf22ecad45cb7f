"""Statistics over seeds: mean ± std (sample std, ddof=1) and Welch's t-test.

Welch's t-test for samples a, b (unequal variances)::

    t  = (mean_a - mean_b) / sqrt(s_a^2/n_a + s_b^2/n_b)
    df = (s_a^2/n_a + s_b^2/n_b)^2 / ((s_a^2/n_a)^2/(n_a-1) + (s_b^2/n_b)^2/(n_b-1))
    p  = 2 * P(T_df > |t|)                      (two-sided)

Confidence interval of a mean over n seeds (Student's t)::

    mean ± t_{(1 + level) / 2, n - 1} * s / sqrt(n)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from scipy import stats

from mmrefine.core.errors import ConfigError


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    if n == 0:
        raise ConfigError("mean_std: no values to summarise")
    m = sum(values) / n
    s = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return m, s


def confidence_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """``(mean, half_width)`` of the Student-t interval for the mean (half-width 0 for one value)."""
    if not 0 < level < 1:
        raise ConfigError(f"confidence_interval: level must be in (0, 1), got {level}")
    m, s = mean_std(values)
    n = len(values)
    if n < 2:
        return m, 0.0
    return m, float(stats.t.ppf((1 + level) / 2, n - 1) * s / math.sqrt(n))


def welch_t_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """``(t, p)`` of Welch's two-sided t-test; ``p = nan`` when undefined (n < 2 or zero variance)."""
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return float("nan"), float("nan")
    va, vb = sa**2 / na, sb**2 / nb
    if va + vb == 0:
        return float("nan"), float("nan")
    t = (ma - mb) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    return t, float(2 * stats.t.sf(abs(t), df))


@dataclass
class Comparison:
    name: str
    mean: float
    std: float
    n: int
    p_value: float  # against the baseline (nan for the baseline itself)


def compare(results: Mapping[str, Sequence[float]], baseline: str) -> list[Comparison]:
    """Mean ± std of every config and Welch's p-value against ``baseline``."""
    if baseline not in results:
        raise ConfigError(f"baseline '{baseline}' not among {list(results)}")
    rows = []
    for name, vals in results.items():
        m, s = mean_std(vals)
        p = float("nan") if name == baseline else welch_t_test(vals, results[baseline])[1]
        rows.append(Comparison(name, m, s, len(vals), p))
    return rows
