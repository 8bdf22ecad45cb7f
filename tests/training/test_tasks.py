"""Task metrics on hand-made inputs."""

import pytest


def test_binary_classification_adds_f1_roc_auc_and_pr_auc_matching_sklearn() -> None:
    import torch
    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

    from mmrefine.training.tasks import Classification

    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(64, 2, generator=g), torch.randint(0, 2, (64,), generator=g)
    m = Classification(2).metrics()
    m.update(logits, y)
    got = {k: float(v) for k, v in m.compute().items()}
    p = logits.softmax(-1)[:, 1].numpy()
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-6)
    assert got["pr_auc"] == pytest.approx(average_precision_score(y, p), abs=1e-6)
    assert got["f1"] == pytest.approx(f1_score(y, p > 0.5), abs=1e-6)
    assert set(Classification(3).metrics().keys()) == {"acc", "f1_macro"}
    assert Classification.metric_mode("test/pr_auc") == "max"
