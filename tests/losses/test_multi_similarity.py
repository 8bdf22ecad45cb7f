import math

import pytest
import torch
from pytorch_metric_learning import losses, miners

from mmrefine.losses import MultiSimilarityLoss, mine_hard_pairs, pair_masks


def test_single_label_equals_pytorch_metric_learning() -> None:
    torch.manual_seed(0)
    emb, labels = torch.randn(32, 8), torch.randint(0, 4, (32,))
    ref = losses.MultiSimilarityLoss(alpha=2, beta=50, base=0.5)(emb, labels, miners.MultiSimilarityMiner(0.1)(emb, labels))
    assert MultiSimilarityLoss()(emb, labels).item() == pytest.approx(ref.item(), rel=1e-6)
    ref_all = losses.MultiSimilarityLoss(alpha=2, beta=50, base=0.5)(emb, labels)
    assert MultiSimilarityLoss(mining=False)(emb, labels).item() == pytest.approx(ref_all.item(), rel=1e-6)


def test_one_hot_multilabel_equals_single_label() -> None:
    torch.manual_seed(1)
    emb, labels = torch.randn(16, 5), torch.randint(0, 3, (16,))
    onehot = torch.nn.functional.one_hot(labels, 3).float()
    loss = MultiSimilarityLoss()
    assert loss(emb, onehot).item() == pytest.approx(loss(emb, labels).item(), rel=1e-6)


def test_own_miner_matches_pml_miner_on_single_label() -> None:
    torch.manual_seed(2)
    emb, labels = torch.randn(20, 6), torch.randint(0, 3, (20,))
    e = torch.nn.functional.normalize(emb, dim=1)
    pos, neg = pair_masks(labels)
    ours = mine_hard_pairs(e @ e.T, pos, neg, 0.1)
    theirs = miners.MultiSimilarityMiner(0.1)(emb, labels)
    as_set = lambda a, b: set(zip(a.tolist(), b.tolist()))  # noqa: E731
    assert as_set(ours[0], ours[1]) == as_set(theirs[0], theirs[1])
    assert as_set(ours[2], ours[3]) == as_set(theirs[2], theirs[3])


def test_multilabel_rule_on_hand_made_case() -> None:
    """Positives share at least one label, for every anchor (not anchor 0 only)."""
    labels = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1]])
    pos, neg = pair_masks(labels)
    assert pos.tolist() == [
        [False, True, False, False],
        [True, False, True, False],
        [False, True, False, False],
        [False, False, False, False],
    ]
    assert neg.tolist() == [
        [False, False, True, True],
        [False, False, False, True],
        [True, False, False, True],
        [True, True, True, False],
    ]
    # orthonormal-ish embeddings with chosen cosines; no mining: formula by hand
    emb = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]])
    S = emb @ emb.T
    a, b, lam = 2.0, 50.0, 0.5
    expected = 0.0
    for i in range(4):
        P = [k for k in range(4) if pos[i, k]]
        N = [k for k in range(4) if neg[i, k]]
        expected += 1 / a * math.log(1 + sum(math.exp(-a * (S[i, k] - lam)) for k in P))
        expected += 1 / b * math.log(1 + sum(math.exp(b * (S[i, k] - lam)) for k in N))
    expected /= 4
    got = MultiSimilarityLoss(alpha=a, beta=b, base=lam, mining=False)(emb, labels.float())
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_hard_mining_rule_by_hand() -> None:
    # anchor 0: positive sim 0.3, negatives 0.35 and -0.9. min pos = 0.3, max neg = 0.35.
    sim = torch.tensor([[1.0, 0.3, 0.35, -0.9], [0.3, 1, 0, 0], [0.35, 0, 1, 0], [-0.9, 0, 0, 1]])
    pos = torch.zeros(4, 4, dtype=torch.bool)
    pos[0, 1] = True
    neg = torch.zeros(4, 4, dtype=torch.bool)
    neg[0, 2] = neg[0, 3] = True
    a1, p, a2, n = mine_hard_pairs(sim, pos, neg, epsilon=0.1)
    assert list(zip(a1.tolist(), p.tolist())) == [(0, 1)]  # 0.3 - 0.1 < 0.35
    assert list(zip(a2.tolist(), n.tolist())) == [(0, 2)]  # 0.35 + 0.1 > 0.3; -0.9 is easy


def test_samples_without_any_label_are_not_negatives_of_each_other() -> None:
    labels = torch.tensor([[1, 0], [0, 0], [0, 0], [0, 1]])
    pos, neg = pair_masks(labels)
    assert not pos[1].any() and not pos[2].any()
    assert not neg[1, 2] and not neg[2, 1]  # two unlabelled samples: no pair
    assert neg[1, 0] and neg[1, 3] and neg[0, 1]  # an unlabelled sample is still a negative of a labelled one
    assert neg[0, 3] and not neg[0, 0]
