"""Losses: refiner reconstruction losses and the Multi-Similarity metric loss."""

from mmrefine.losses.multi_similarity import MultiSimilarityLoss, mine_hard_pairs, pair_masks
from mmrefine.losses.refiner import REFINER_LOSSES, ContrastiveRefinerLoss, CosineRefinerLoss, MSERefinerLoss

__all__ = [
    "REFINER_LOSSES", "ContrastiveRefinerLoss", "CosineRefinerLoss", "MSERefinerLoss", "MultiSimilarityLoss",
    "mine_hard_pairs", "pair_masks",
]
