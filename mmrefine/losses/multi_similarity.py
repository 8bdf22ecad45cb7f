"""Multi-Similarity loss (ReFNetMS) on the L2-normalised fused embedding.

For a batch of B embeddings with cosine similarities ``S_ik``::

    L_MS = 1/B sum_i [ 1/alpha log(1 + sum_{k in P_i} exp(-alpha (S_ik - lambda)))
                     + 1/beta  log(1 + sum_{k in N_i} exp( beta (S_ik - lambda))) ]

``alpha`` weighs positives and ``beta`` negatives (pytorch-metric-learning's
convention, ``alpha=2, beta=50, lambda=base=0.5``; the papers print alpha=50,
beta=2 with the roles swapped, i.e. the same setting). ``P_i``/``N_i`` are the
hard pairs kept by Multi-Similarity mining with margin ``epsilon``: a positive
k is kept if ``S_ik - epsilon < max_{n in neg(i)} S_in``; a negative if
``S_ik + epsilon > min_{p in pos(i)} S_ip``.

Labels are class indices ``(B,)`` (positive = same class; this path *is*
pytorch-metric-learning's loss and miner) or multi-hot ``(B, C)`` (positive =
the pair shares at least one label, for every anchor; the MMF reference
compares every anchor with sample 0 instead).
"""

from __future__ import annotations

import torch
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners
from torch import Tensor, nn

from mmrefine.core.errors import BatchError


def pair_masks(labels: Tensor) -> tuple[Tensor, Tensor]:
    """Positive and negative ``(B, B)`` masks (diagonal excluded).

    Multi-hot labels: a pair is positive when it shares a label, negative
    otherwise, except that two samples with no label at all form no pair (their
    similarity says nothing about a class)."""
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    if labels.dim() == 1:
        same = labels[:, None] == labels[None, :]
        return same & ~eye, ~same & ~eye
    if labels.dim() != 2:
        raise BatchError(f"labels must be (B,) or (B, C), got {tuple(labels.shape)}")
    y = (labels > 0).float()
    same = (y @ y.T) > 0
    empty = y.sum(1) == 0
    both_empty = empty[:, None] & empty[None, :]
    return same & ~eye, ~same & ~eye & ~both_empty


def mine_hard_pairs(sim: Tensor, pos: Tensor, neg: Tensor, epsilon: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Multi-Similarity mining on a similarity matrix; returns ``(a1, p, a2, n)``."""
    inf = torch.finfo(sim.dtype).max
    min_pos = sim.masked_fill(~pos, inf).min(dim=1).values
    max_neg = sim.masked_fill(~neg, -inf).max(dim=1).values
    hard_pos = pos & (sim - epsilon < max_neg[:, None])
    hard_neg = neg & (sim + epsilon > min_pos[:, None])
    a1, p = torch.nonzero(hard_pos, as_tuple=True)
    a2, n = torch.nonzero(hard_neg, as_tuple=True)
    return a1, p, a2, n


class MultiSimilarityLoss(nn.Module):
    """See module docstring. ``forward(embeddings, labels)``; ``mining=False``
    uses every pair.

    Args:
        alpha: scale of the positive term.
        beta: scale of the negative term.
        base: the similarity offset ``lambda``.
        epsilon: the mining margin.
        mining: keep only hard pairs (Multi-Similarity mining); False uses every pair.
    """

    def __init__(self, alpha: float = 2.0, beta: float = 50.0, base: float = 0.5, epsilon: float = 0.1, mining: bool = True) -> None:
        super().__init__()
        self.loss = pml_losses.MultiSimilarityLoss(alpha=alpha, beta=beta, base=base)
        self.miner = pml_miners.MultiSimilarityMiner(epsilon=epsilon) if mining else None
        self.epsilon = epsilon

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        if labels.dim() == 1:
            tuples = self.miner(embeddings, labels) if self.miner is not None else None
            return self.loss(embeddings, labels, tuples)
        with torch.no_grad():
            e = nn.functional.normalize(embeddings.detach(), dim=1)
            pos, neg = pair_masks(labels)
            if self.miner is not None:
                tuples = mine_hard_pairs(e @ e.T, pos, neg, self.epsilon)
            else:
                a1, p = torch.nonzero(pos, as_tuple=True)
                a2, n = torch.nonzero(neg, as_tuple=True)
                tuples = (a1, p, a2, n)
        return self.loss(embeddings, None, tuples)
