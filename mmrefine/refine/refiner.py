"""The Refiner wrapper (ReFNet, Sankaran et al.) around any mmrefine model.

Training objective::

    L = L_task + sum_m gamma_m C_m(D_m(z), H_m(F_m)) + zeta L_MS(z / ||z||)

* ``z`` is the base model's fused embedding, ``F_m`` its per-modality features
  (``ModelOutput.features``: encoder outputs, or pooled token spans for
  transformer fusions);
* ``D_m`` is a registered decoder ``Linear -> ReLU -> Linear`` from ``z`` to the
  target width (the MMF reference keeps its decoders in a plain dict, so they
  are never trained or saved); all M decoders and losses run as batched
  matmuls (:class:`~mmrefine.refine.decoders.GroupedDecoders`);
* ``H_m`` is the identity, or a projection to ``projection.dim`` (learned, or a
  fixed random matrix with ``projection.learn: false``). A learned ``H_m`` can
  shrink its targets to make the MSE loss trivial: prefer cosine with it;
* ``C_m`` is a :mod:`mmrefine.losses.refiner` loss, computed over the samples in
  which modality m is present;
* ``L_MS`` is the Multi-Similarity loss (weight ``zeta = ms.weight``).

Configured by one spec, the same in YAML (``model.refiner``) and in Python::

    Refiner(model, loss={"name": "contrastive", "margin": 0.2}, gamma=0.1,
            decoder={"hidden": 64}, projection={"dim": 32, "learn": True},
            ms={"weight": 0.1, "alpha": 2, "beta": 50, "base": 0.5, "epsilon": 0.1})

Every key is checked: a misspelt one is a :class:`ConfigError` naming it.

Inference: ``forward`` returns exactly the base model's output, and
:meth:`inference_model` returns the base model itself (decoders, projections and
losses left behind), so inference costs and outputs are the base model's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from mmrefine.core.errors import ConfigError
from mmrefine.core.output import ModelOutput
from mmrefine.core.protocols import HasAuxiliaryLosses, check_model
from mmrefine.core.registry import build_checked
from mmrefine.losses.multi_similarity import MultiSimilarityLoss
from mmrefine.losses.refiner import REFINER_LOSSES, RefinerLoss
from mmrefine.refine.decoders import GroupedDecoders
from mmrefine.refine.wrapper import ModelWrapper


@dataclass(frozen=True)
class DecoderSpec:
    """``decoder``: the hidden width of every ``D_m`` (None: the fused width)."""

    hidden: int | None = None


@dataclass(frozen=True)
class ProjectionSpec:
    """``projection``: targets ``H_m(F_m)`` of width ``dim``; ``learn: false`` fixes ``H_m`` at random."""

    dim: int
    learn: bool = True


@dataclass(frozen=True)
class MultiSimilaritySpec:
    """``ms``: the Multi-Similarity term ``weight * L_MS`` and the loss's settings
    (pytorch-metric-learning's names; see :class:`~mmrefine.losses.MultiSimilarityLoss`)."""

    weight: float = 0.1
    alpha: float = 2.0
    beta: float = 50.0
    base: float = 0.5
    epsilon: float = 0.1


def _spec(cls: type, value: Any, where: str) -> Any:
    if value is None or isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping of {', '.join(cls.__dataclass_fields__)}, got {value!r}")
    return build_checked(cls, value, where)


class Refiner(ModelWrapper):
    """See module docstring.

    Args:
        model: any :class:`~mmrefine.core.MultimodalModel` (a FusionModel, a
            ProgressiveFusion wrapper, MulT, UCRN, ...).
        loss: the reconstruction loss ``C_m``: a registered name (``cosine``,
            ``mse``, ``contrastive``), a spec ``{name, **settings}`` such as
            ``{name: contrastive, margin: 0.2}``, or a loss module.
        gamma: the weight ``gamma_m``, one number or ``{modality: weight}``
            (modalities not named get 0; a 0 weight adds no term).
        decoder: ``{hidden}``, see :class:`DecoderSpec`.
        projection: ``{dim, learn}``, see :class:`ProjectionSpec`; None: targets are ``F_m`` themselves.
        detach_targets: stop gradients through the targets (only the fused
            embedding then moves towards the features).
        ms: ``{weight, alpha, beta, base, epsilon}``, see
            :class:`MultiSimilaritySpec`; None: no metric loss.
        unlabelled: what fine-tuning does with the training samples whose labels
            are held out (``data.labelled_fraction < 1``): ``ignore`` them (they
            only feed ``pretrain``), or train ``joint``-ly: each step also takes an
            unlabelled batch, which contributes the refiner terms and nothing else.
    """

    def __init__(
        self,
        model: nn.Module,
        loss: str | Mapping[str, Any] | RefinerLoss = "cosine",
        gamma: float | Mapping[str, float] = 0.1,
        decoder: Mapping[str, Any] | DecoderSpec | None = None,
        projection: Mapping[str, Any] | ProjectionSpec | None = None,
        detach_targets: bool = False,
        ms: Mapping[str, Any] | MultiSimilaritySpec | None = None,
        unlabelled: str = "ignore",
    ) -> None:
        super().__init__()
        self.model = check_model(model, "Refiner")
        fused_dim = int(model.fused_dim)
        feature_dims: dict[str, int] = dict(model.feature_dims)
        self.target_modalities = list(feature_dims)
        if isinstance(gamma, Mapping):
            unknown = set(gamma) - set(feature_dims)
            if unknown:
                raise ConfigError(f"model.refiner.gamma: unknown modality {sorted(unknown)} (have {self.target_modalities})")
            self.gamma = {m: float(gamma.get(m, 0.0)) for m in self.target_modalities}
        else:
            self.gamma = {m: float(gamma) for m in self.target_modalities}
        dec = _spec(DecoderSpec, decoder, "model.refiner.decoder") or DecoderSpec()
        proj = _spec(ProjectionSpec, projection, "model.refiner.projection")
        ms_spec = _spec(MultiSimilaritySpec, ms, "model.refiner.ms")
        self.projections = nn.ModuleDict()
        target_dims = {}
        for m, d in feature_dims.items():
            if proj is None:
                target_dims[m] = d
                continue
            layer = nn.Linear(d, proj.dim, bias=False)
            layer.weight.requires_grad_(proj.learn)
            self.projections[m] = layer
            target_dims[m] = proj.dim
        self.decoders = GroupedDecoders(fused_dim, dec.hidden or fused_dim, target_dims)
        self.register_buffer("gammas", torch.tensor([self.gamma[m] for m in self.target_modalities]), persistent=False)
        if isinstance(loss, nn.Module):
            self.criterion = loss
        else:
            loss_spec = {"name": loss} if isinstance(loss, str) else dict(loss)
            self.criterion = REFINER_LOSSES.build(loss_spec, where="model.refiner.loss")
        if unlabelled not in ("ignore", "joint"):
            raise ConfigError(f"model.refiner.unlabelled must be 'ignore' or 'joint', got '{unlabelled}'")
        self.unlabelled = unlabelled
        self.detach_targets = detach_targets
        self.ms_weight = 0.0 if ms_spec is None else float(ms_spec.weight)
        self.ms_loss = (
            MultiSimilarityLoss(ms_spec.alpha, ms_spec.beta, ms_spec.base, ms_spec.epsilon)
            if ms_spec is not None and ms_spec.weight > 0 else None
        )

    def forward(self, inputs: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> ModelOutput:
        return self.model(inputs, mask)

    def inference_model(self) -> nn.Module:
        """The base model: what to export and deploy."""
        return self.model

    def targets(self, out: ModelOutput) -> dict[str, Tensor]:
        t = {m: (self.projections[m](f) if m in self.projections else f) for m, f in out.features.items()}
        return {m: v.detach() for m, v in t.items()} if self.detach_targets else t

    def reconstructions(self, out: ModelOutput) -> dict[str, Tensor]:
        return self.decoders.split(self.decoders(out.fused))

    def auxiliary_losses(
        self, out: ModelOutput, mask: Mapping[str, Tensor] | None = None, labels: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Weighted loss terms by name: ``refiner_<m>`` = gamma_m C_m (samples where
        m is absent are left out), ``ms`` = zeta L_MS (only when labels are given),
        plus the wrapped model's own auxiliary terms (e.g. UCRN's ``mjs``)."""
        terms: dict[str, Tensor] = (
            dict(self.model.auxiliary_losses(out, mask, labels)) if isinstance(self.model, HasAuxiliaryLosses) else {}
        )
        recon = self.decoders(out.fused)  # (M, B, d_max), zero-padded
        d_max = recon.shape[-1]
        targets = self.targets(out)
        stacked = torch.stack([nn.functional.pad(targets[m], (0, d_max - targets[m].shape[1])) for m in self.target_modalities])
        presence = None if mask is None else torch.stack([mask[m] for m in self.target_modalities])
        per_modality = self.gammas * self.criterion(recon, stacked, presence, self.decoders.dims)
        terms.update({f"refiner_{m}": per_modality[i] for i, m in enumerate(self.target_modalities) if self.gamma[m] != 0.0})
        if self.ms_loss is not None and labels is not None:
            terms["ms"] = self.ms_weight * self.ms_loss(out.fused, labels)
        return terms
