"""Greedy weighted ensemble of held-out predictions (Caruana et al., ICML 2004; the
``WeightedEnsemble`` AutoGluon fits on out-of-fold predictions).

Given each member's held-out outputs ``P_j`` (probabilities ``(n, C)`` or values ``(n,)``)
and a score ``s`` (greater is better), start from an empty bag and, ``rounds`` times,
add (with replacement) the member whose addition maximises ``s(mean of the bag)``.
The weights are the members' shares of the bag at the round that scored best, so

    w_j = c_j / sum_k c_k,  sum_j w_j = 1,  w_j >= 0,
    s(sum_j w_j P_j) >= max_j s(P_j)          (round 1 picks the best single member)

on the predictions it was fitted on.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np


def greedy_weights(outputs: Mapping[str, np.ndarray], score: Callable[[np.ndarray], float], rounds: int = 50) -> dict[str, float]:
    """``{member: weight}`` by greedy selection with replacement (see module docstring);
    ties go to the member listed first."""
    names = list(outputs)
    if not names:
        raise ValueError("an ensemble needs at least one member")
    if len(names) == 1:
        return {names[0]: 1.0}
    counts = np.zeros(len(names))
    total = np.zeros_like(np.asarray(outputs[names[0]], dtype=float))
    best_score, best_counts = -np.inf, counts.copy()
    for r in range(1, rounds + 1):
        trial = [score((total + np.asarray(outputs[m], dtype=float)) / r) for m in names]
        j = int(np.argmax(trial))
        counts[j] += 1
        total += np.asarray(outputs[names[j]], dtype=float)
        if trial[j] > best_score + 1e-12:
            best_score, best_counts = trial[j], counts.copy()
    w = best_counts / best_counts.sum()
    return {m: float(w[i]) for i, m in enumerate(names)}


def blend(outputs: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """``sum_j w_j P_j`` over the members with a positive weight."""
    used = [m for m, w in weights.items() if w > 0]
    return sum(weights[m] * np.asarray(outputs[m], dtype=float) for m in used)  # type: ignore[return-value]
