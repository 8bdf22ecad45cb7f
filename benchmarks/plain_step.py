"""One plain PyTorch training step (no engine), shared by the benchmarks that compare against it."""

from __future__ import annotations

import torch


def plain_step(model: torch.nn.Module, task, opt: torch.optim.Optimizer, batch) -> None:  # noqa: ANN001
    """Forward, the task loss plus any auxiliary terms of the model, backward, optimiser step."""
    out = model(batch.inputs, batch.mask)
    loss = task.loss(out.logits, batch.labels)
    aux = getattr(model, "auxiliary_losses", None)
    if aux is not None:
        loss = loss + sum(aux(out, batch.mask, batch.labels).values())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
