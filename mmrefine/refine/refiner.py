"""The Refiner wrapper (ReFNet, seeds 000/001) around any mmrefine model.

Training objective::

    L = L_task + sum_m gamma_m C_m(D_m(z), H_m(F_m)) + zeta L_MS(z / ||z||)

* ``z`` is the base model's fused embedding, ``F_m`` its per-modality features
  (``ModelOutput.features``: encoder outputs, or pooled token spans for
  transformer fusions);
* ``D_m`` is a registered decoder ``Linear -> ReLU -> Linear`` from ``z`` to the
  target width (the MMF reference keeps its decoders in a plain dict, so they
  are never trained or saved); all M decoders and losses run as batched
  matmuls (:class:`~mmrefine.refine.decoders.GroupedDecoders`);
* ``H_m`` is the identity, or a projection to ``projection_dim`` (learned, or a
  fixed random matrix with ``learn_projection=False``). A learned ``H_m`` can
  shrink its targets to make the MSE loss trivial: prefer cosine with it;
* ``C_m`` is a :mod:`mmrefine.losses.refiner` loss, computed over the samples in
  which modality m is present;
* ``L_MS`` is the Multi-Similarity loss (weight ``zeta = ms_weight``).

Inference: ``forward`` returns exactly the base model's output, and
:meth:`inference_model` returns the base model itself (decoders, projections and
losses left behind), so inference costs and outputs are the base model's.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from mmrefine.errors import ConfigError
from mmrefine.losses.multi_similarity import MultiSimilarityLoss
from mmrefine.losses.refiner import REFINER_LOSSES
from mmrefine.models.fusion_model import ModelOutput
from mmrefine.refine.decoders import GroupedDecoders


class Refiner(nn.Module):
    """See module docstring."""

    def __init__(
        self,
        model: nn.Module,
        loss: str = "cosine",
        gamma: float | Mapping[str, float] = 0.1,
        decoder_hidden: int | None = None,
        projection_dim: int | None = None,
        learn_projection: bool = True,
        detach_targets: bool = False,
        margin: float = 0.0,
        ms_weight: float = 0.0,
        ms_alpha: float = 2.0,
        ms_beta: float = 50.0,
        ms_base: float = 0.5,
        ms_epsilon: float = 0.1,
    ) -> None:
        super().__init__()
        self.model = model
        fused_dim = int(model.fused_dim)
        feature_dims: dict[str, int] = dict(model.feature_dims)
        self.modalities = list(feature_dims)
        if isinstance(gamma, Mapping):
            unknown = set(gamma) - set(feature_dims)
            if unknown:
                raise ConfigError(f"refiner.gamma: unknown modality {sorted(unknown)} (have {self.modalities})")
            self.gamma = {m: float(gamma.get(m, 0.0)) for m in self.modalities}
        else:
            self.gamma = {m: float(gamma) for m in self.modalities}
        hidden = decoder_hidden or fused_dim
        self.projections = nn.ModuleDict()
        target_dims = {}
        for m, d in feature_dims.items():
            if projection_dim is None:
                target_dims[m] = d
                continue
            proj = nn.Linear(d, projection_dim, bias=False)
            proj.weight.requires_grad_(learn_projection)
            self.projections[m] = proj
            target_dims[m] = projection_dim
        self.decoders = GroupedDecoders(fused_dim, hidden, target_dims)
        self.register_buffer("gammas", torch.tensor([self.gamma[m] for m in self.modalities]), persistent=False)
        loss_kwargs = {"margin": margin} if loss == "contrastive" else {}
        self.loss_name = loss
        self.criterion = REFINER_LOSSES.build({"name": loss, **loss_kwargs}, where="refiner.loss")
        self.detach_targets = detach_targets
        self.ms_weight = ms_weight
        self.ms_loss = MultiSimilarityLoss(ms_alpha, ms_beta, ms_base, ms_epsilon) if ms_weight > 0 else None

    # the wrapper is transparent to further wrappers and to evaluation code
    @property
    def fused_dim(self) -> int:
        return int(self.model.fused_dim)

    @property
    def feature_dims(self) -> dict[str, int]:
        return dict(self.model.feature_dims)

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
        inner = getattr(self.model, "auxiliary_losses", None)
        terms: dict[str, Tensor] = dict(inner(out, mask, labels)) if inner is not None else {}
        recon = self.decoders(out.fused)  # (M, B, d_max), zero-padded
        d_max = recon.shape[-1]
        targets = self.targets(out)
        stacked = torch.stack([nn.functional.pad(targets[m], (0, d_max - targets[m].shape[1])) for m in self.modalities])
        presence = None if mask is None else torch.stack([mask[m] for m in self.modalities])
        per_modality = self.gammas * self.criterion(recon, stacked, presence, self.decoders.dims)
        terms.update({f"refiner_{m}": per_modality[i] for i, m in enumerate(self.modalities) if self.gamma[m] != 0.0})
        if self.ms_loss is not None and labels is not None:
            terms["ms"] = self.ms_weight * self.ms_loss(out.fused, labels)
        return terms
