"""The contract every model meets, and the optional capabilities.

A **model** (:class:`MultimodalModel`) is an ``nn.Module`` whose
``forward(inputs, mask)`` takes ``{modality: (B, ...) tensor}`` and a presence
mask ``{modality: (B,) bool}`` (``None``: all present) and returns a
:class:`~mmrefine.core.ModelOutput`; it tells wrappers its ``modalities``, the
width ``fused_dim`` of ``z`` and the widths ``feature_dims`` of the ``F_m``.

Capabilities, each its own small Protocol checked with ``isinstance``:

* :class:`HasAuxiliaryLosses`: extra named loss terms added to the task loss
  (a Refiner's reconstruction losses, UCRN's Jensen-Shannon regulariser);
* :class:`HasInferenceModel`: a training-time wrapper that hands back what to
  deploy (a Refiner returns its base model);
* :class:`HasStepFeatures`: internals that hold every unrolled step's
  unimodal representations (Progressive Fusion), for linear probes per step;
* :class:`HasGates` / :class:`HasWeights`: internals exposing GMU gates or
  attention weights.
"""

from __future__ import annotations

from typing import Mapping, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from mmrefine.core.output import ModelOutput


@runtime_checkable
class MultimodalModel(Protocol):
    """``forward(inputs, mask) -> ModelOutput`` plus the widths wrappers need."""

    @property
    def modalities(self) -> list[str]: ...

    @property
    def fused_dim(self) -> int: ...

    @property
    def feature_dims(self) -> dict[str, int]: ...

    def forward(self, inputs: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> ModelOutput: ...


@runtime_checkable
class HasAuxiliaryLosses(Protocol):
    """``auxiliary_losses(out, mask, labels) -> {name: weighted scalar}``; labels may be None
    (self-supervised pretraining), and terms that need them are then left out."""

    def auxiliary_losses(
        self, out: ModelOutput, mask: Mapping[str, Tensor] | None = None, labels: Tensor | None = None
    ) -> dict[str, Tensor]: ...


@runtime_checkable
class HasInferenceModel(Protocol):
    """A training-time wrapper: ``inference_model()`` is what to export and deploy."""

    def inference_model(self) -> nn.Module: ...


@runtime_checkable
class HasStepFeatures(Protocol):
    """Model internals holding each unrolled step's unimodal representations and
    the last step's fusion output."""

    step_features: tuple[dict[str, Tensor], ...]
    fusion: object


@runtime_checkable
class AcceptsContext(Protocol):
    """A model that takes, besides its inputs, an additive context vector per modality
    added where that modality enters its hidden space (e.g. to MMBT's token embeddings):
    ``forward(inputs, mask, context={m: (B, context_dims[m])})``. Progressive Fusion
    injects there when its inputs cannot take a sum (token ids)."""

    @property
    def context_dims(self) -> dict[str, int]: ...


@runtime_checkable
class HasInputShape(Protocol):
    """An encoder that knows the per-sample shape it takes (``None``: any length)."""

    input_shape: tuple[int | None, ...]


def parameter_dtype(module: nn.Module) -> torch.dtype | None:
    """The floating dtype of ``module``'s first floating parameter (None: it has none)."""
    return next((p.dtype for p in module.parameters() if p.is_floating_point()), None)


@runtime_checkable
class HasSlots(Protocol):
    """A model whose fused vector is a concatenation of its features:
    ``fused_slots[m] = (start, end)``, or None when it is not."""

    @property
    def fused_slots(self) -> dict[str, tuple[int, int]] | None: ...


@runtime_checkable
class HasGates(Protocol):
    gates: Tensor | None


@runtime_checkable
class HasWeights(Protocol):
    weights: Tensor | None


def check_model(model: object, where: str = "model") -> MultimodalModel:
    """Return ``model`` if it meets :class:`MultimodalModel`, else raise a
    :class:`~mmrefine.core.errors.ContractError` naming what is missing."""
    from mmrefine.core.errors import ContractError

    if isinstance(model, nn.Module) and isinstance(model, MultimodalModel):
        return model
    needs = ["an nn.Module"] if not isinstance(model, nn.Module) else []
    needs += [a for a in ("modalities", "fused_dim", "feature_dims") if a not in dir(model)]
    raise ContractError(
        f"{where}: {type(model).__name__} is not a multimodal model (needs {', '.join(needs)}); "
        "see mmrefine.core.MultimodalModel"
    )


def inference_model(model: nn.Module) -> nn.Module:
    """Strip training-only wrappers (a Refiner's decoders) down to what predicts."""
    while isinstance(model, HasInferenceModel):
        inner = model.inference_model()
        if inner is model:
            break
        model = inner
    return model
