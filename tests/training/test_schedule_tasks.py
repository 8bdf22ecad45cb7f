import pytest
import torch

from mmrefine.core.errors import BatchError, ConfigError
from mmrefine.training.schedule import WarmupDecay
from mmrefine.training.tasks import Classification, MultiLabel, Regression


def test_warmup_then_cosine_and_linear() -> None:
    f = WarmupDecay(total_steps=14, warmup_steps=4, schedule="cosine")
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(4) == 1.0 and f(9) == pytest.approx(0.5) and f(14) == pytest.approx(0.0, abs=1e-12)
    g = WarmupDecay(total_steps=10, warmup_steps=0, schedule="linear", min_ratio=0.1)
    assert g(5) == pytest.approx(0.1 + 0.9 * 0.5)
    assert WarmupDecay(10, 2, "constant")(8) == 1.0
    with pytest.raises(ConfigError, match="optim.schedule"):
        WarmupDecay(10, 0, "step")


def test_task_losses_and_label_checks() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    c = Classification(2)
    assert c.loss(logits, torch.tensor([0, 1])).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])).item()
    )
    with pytest.raises(BatchError, match="must lie in \\[0, 2\\)"):
        c.loss(logits, torch.tensor([0, 2]))
    with pytest.raises(BatchError, match="integer class indices"):
        c.loss(logits, torch.tensor([0.0, 1.0]))
    m = MultiLabel(2)
    y = torch.tensor([[1, 0], [1, 1]])
    assert m.loss(logits, y).item() == pytest.approx(torch.nn.functional.binary_cross_entropy_with_logits(logits, y.float()).item())
    r = Regression(1, loss="l1")
    assert r.loss(torch.tensor([[1.0], [2.0]]), torch.tensor([0.0, 4.0])).item() == pytest.approx(1.5)
    with pytest.raises(ConfigError):
        Regression(1, loss="huber")
