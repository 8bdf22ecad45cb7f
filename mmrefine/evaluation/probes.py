"""Embeddings for analysis, and linear probes of representations.

:func:`collect` runs a model in inference mode over a loader and keeps the
fused embeddings, per-modality features, labels, the fusion internals that
are tensors (GMU gates, attention weights), and, for Progressive Fusion, every
step's unimodal representations. :func:`linear_probe` fits a logistic
regression on training representations and returns test accuracy;
:func:`probe_steps` does this for every modality at every unrolled step
(Progressive Fusion, Shankar et al., Fig. 13).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import torch
from torch import Tensor, nn

from mmrefine.core.errors import DataError
from mmrefine.core.protocols import HasGates, HasStepFeatures, HasWeights
from mmrefine.data.batch import MultimodalBatch


@dataclass
class Collected:
    fused: Tensor
    features: dict[str, Tensor]
    labels: Tensor | None
    gates: Tensor | None = None
    weights: Tensor | None = None
    step_features: list[dict[str, Tensor]] = field(default_factory=list)


def _cat(xs: list[Tensor]) -> Tensor:
    return torch.cat(xs) if xs else torch.empty(0)


@torch.no_grad()
def collect(model: nn.Module, batches: Iterable[MultimodalBatch]) -> Collected:
    was = model.training
    model.eval()
    fused, labels, gates, weights = [], [], [], []
    feats: dict[str, list[Tensor]] = {}
    steps: list[dict[str, list[Tensor]]] = []
    try:
        for b in batches:
            out = model(b.inputs, b.mask)
            fused.append(out.fused)
            if b.labels is not None:
                labels.append(b.labels)
            for m, f in out.features.items():
                feats.setdefault(m, []).append(f)
            internals = out.fusion
            if isinstance(internals, HasStepFeatures):
                for t, sf in enumerate(internals.step_features):
                    if len(steps) <= t:
                        steps.append({})
                    for m, f in sf.items():
                        steps[t].setdefault(m, []).append(f)
                internals = internals.fusion
            if isinstance(internals, HasGates) and internals.gates is not None:
                gates.append(internals.gates)
            if isinstance(internals, HasWeights) and internals.weights is not None:
                weights.append(internals.weights)
    finally:
        model.train(was)
    return Collected(
        _cat(fused),
        {m: _cat(v) for m, v in feats.items()},
        _cat(labels) if labels else None,
        _cat(gates) if gates else None,
        _cat(weights) if weights else None,
        [{m: _cat(v) for m, v in s.items()} for s in steps],
    )


def linear_probe(x_train: Tensor, y_train: Tensor, x_test: Tensor, y_test: Tensor, max_iter: int = 2000) -> float:
    """Test accuracy of a logistic-regression probe on standardised representations."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    clf.fit(x_train.numpy(), y_train.numpy())
    return float(np.mean(clf.predict(x_test.numpy()) == y_test.numpy()))


def probe_steps(train: Collected, test: Collected) -> dict[int, dict[str, float]]:
    """``{step: {modality: probe accuracy}}`` for a Progressive Fusion model
    (step 1 .. R); a plain model has one step, its features."""
    if train.labels is None or test.labels is None:
        raise DataError("linear probes need labels on both the training and the test representations")
    train_steps = train.step_features or [train.features]
    test_steps = test.step_features or [test.features]
    return {
        t + 1: {m: linear_probe(tr[m], train.labels, te[m], test.labels) for m in tr}
        for t, (tr, te) in enumerate(zip(train_steps, test_steps))
    }
