"""Modality-specific distillation (MSD; Jin et al., MAI 2021) around any mmrefine model.

A trained *teacher* (frozen) and the wrapped *student* see the full input ``x``
and every single-modality input ``x^m`` (only modality m present, the others
absent through the mask). With temperature ``tau`` and per-sample weights
``w``::

    KL_k(i)  = tau² KL(softmax(t(x^k_i) / tau) || softmax(s(x^k_i) / tau)),   k in {all, m_1, ..., m_M}
    L_distill = sum_k mean_i w_k(i) KL_k(i)      (rows where modality m is absent are left out of k = m)
    L         = lambda L_CE + (1 - lambda) L_distill

The engine adds the task loss with weight 1, so the wrapper returns the term
``distill = (1 - lambda) / lambda * L_distill`` (the same objective, scaled by
``1 / lambda``). Weightings (``weighting``):

* ``population``: constant weights ``weights[k]`` (default 1 each); with all equal
  to one constant this is plain knowledge distillation on each input;
* ``importance``: ``w_all = 1``, ``w_m(i) = tanh(KL(t(x_i) || t(x^m_i)))``, how much
  the teacher's output changes when only modality m is kept;
* ``correctness``: ``w_k(i)`` proportional to ``1 / CE(t(x^k_i), y_i)``, normalised
  over k to sum to the number of inputs (the teacher is trusted where it is right);
* ``meta`` (learned weights by a look-ahead on held-out data) is not implemented.

Logits are read as class scores (softmax), so this is for classification
tasks. The teacher is held outside the module tree: it is not trained, not
saved in checkpoints and not exported; :meth:`inference_model` is the student.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmrefine.core.errors import BatchError, ConfigError
from mmrefine.core.mask import full_mask
from mmrefine.core.output import ModelOutput
from mmrefine.core.protocols import HasAuxiliaryLosses, HasSlots, check_model

WEIGHTINGS = ("population", "importance", "correctness")


class DistillInternals(NamedTuple):
    fusion: object  # the student's own internals
    student: dict[str, Tensor]  # logits per input kind ("all" and each modality)
    teacher: dict[str, Tensor]
    present: dict[str, Tensor]  # (B,) rows where the kind's input exists


def kl_per_sample(teacher_logits: Tensor, student_logits: Tensor, tau: float) -> Tensor:
    """``tau² KL(softmax(t / tau) || softmax(s / tau))`` for every row."""
    t = F.log_softmax(teacher_logits / tau, -1)
    s = F.log_softmax(student_logits / tau, -1)
    return tau**2 * (t.exp() * (t - s)).sum(-1)


class ModalityDistiller(nn.Module):
    """See module docstring.

    Args:
        model: the student, any :class:`~mmrefine.core.MultimodalModel`.
        teacher: a trained model over the same modalities and outputs (kept frozen).
        weighting: ``population``, ``importance`` or ``correctness``.
        temperature: ``tau``.
        lam: ``lambda`` in (0, 1], the weight of the task loss (1: no distillation).
        weights: ``population`` weights by input kind (``all`` and modality names; default 1).
        single: distil on the single-modality inputs too (False: plain KD on the full input).
    """

    def __init__(self, model: nn.Module, teacher: nn.Module, weighting: str = "population", temperature: float = 1.0,
                 lam: float = 0.5, weights: Mapping[str, float] | None = None, single: bool = True) -> None:
        super().__init__()
        check_model(model, "distill")
        check_model(teacher, "distill teacher")
        if weighting == "meta":
            raise ConfigError("distill.weighting 'meta' (meta-learned weights) is not implemented; "
                              f"use one of {', '.join(WEIGHTINGS)}")
        if weighting not in WEIGHTINGS:
            raise ConfigError(f"distill.weighting must be one of {', '.join(WEIGHTINGS)}, got '{weighting}'")
        if not 0 < lam <= 1 or temperature <= 0:
            raise ConfigError(f"distill: lam must lie in (0, 1] and temperature be positive, got lam={lam}, temperature={temperature}")
        if sorted(teacher.modalities) != sorted(model.modalities):
            raise ConfigError(f"distill: the teacher's modalities {sorted(teacher.modalities)} differ from the student's "
                              f"{sorted(model.modalities)}")
        self.model = model
        object.__setattr__(self, "teacher", teacher.eval())  # not a submodule: never trained, saved or exported
        for p in teacher.parameters():
            p.requires_grad_(False)
        self.kinds = ["all", *(model.modalities if single else [])]
        unknown = sorted(set(weights or {}) - set(self.kinds))
        if unknown:
            raise ConfigError(f"distill.weights: unknown input kind {unknown}; the kinds are {self.kinds}")
        self.constant = {k: float((weights or {}).get(k, 1.0)) for k in self.kinds}
        self.weighting, self.temperature, self.lam = weighting, temperature, lam

    # the teacher follows the student's device and dtype, and stays in eval mode
    def _apply(self, fn: Any, recurse: bool = True) -> "ModalityDistiller":
        super()._apply(fn, recurse)
        self.teacher._apply(fn)
        return self

    def train(self, mode: bool = True) -> "ModalityDistiller":
        super().train(mode)
        self.teacher.eval()
        return self

    @property
    def modalities(self) -> list[str]:
        return list(self.model.modalities)

    @property
    def fused_dim(self) -> int:
        return int(self.model.fused_dim)

    @property
    def fused_slots(self) -> dict[str, tuple[int, int]] | None:
        return self.model.fused_slots if isinstance(self.model, HasSlots) else None

    @property
    def feature_dims(self) -> dict[str, int]:
        return dict(self.model.feature_dims)

    def inference_model(self) -> nn.Module:
        """The student: what to export and deploy."""
        return self.model

    def forward(self, inputs: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> ModelOutput:
        out = self.model(inputs, mask)
        if not self.training:
            return out
        mask = dict(mask) if mask is not None else full_mask(inputs)
        student, teacher, present = {"all": out.logits}, {}, {"all": torch.ones_like(next(iter(mask.values())))}
        with torch.no_grad():
            teacher["all"] = self.teacher(inputs, mask).logits
        if teacher["all"].shape != out.logits.shape:
            raise BatchError(f"distill: the teacher predicts {tuple(teacher['all'].shape[1:])} outputs, "
                             f"the student {tuple(out.logits.shape[1:])}")
        for m in self.kinds[1:]:
            only = {k: v if k == m else torch.zeros_like(v) for k, v in mask.items()}
            present[m] = mask[m]
            student[m] = self.model(inputs, only).logits
            with torch.no_grad():
                teacher[m] = self.teacher(inputs, only).logits
        return out._replace(fusion=DistillInternals(out.fusion, student, teacher, present))

    def sample_weights(self, internals: DistillInternals, labels: Tensor | None) -> dict[str, Tensor]:
        """``{kind: (B,) weights}`` of the configured weighting (see module docstring)."""
        t = internals.teacher
        b = t["all"].shape[0]
        if self.weighting == "population":
            return {k: t["all"].new_full((b,), self.constant[k]) for k in self.kinds}
        if self.weighting == "importance":
            w = {"all": t["all"].new_ones(b)}
            w.update({m: torch.tanh(kl_per_sample(t["all"], t[m], 1.0)) for m in self.kinds[1:]})
            return w
        if labels is None:
            raise ConfigError("distill.weighting 'correctness' needs labels")
        inv = torch.stack([1.0 / F.cross_entropy(t[k], labels, reduction="none").clamp_min(1e-6) for k in self.kinds], 0)
        inv = inv * torch.stack([internals.present[k].to(inv.dtype) for k in self.kinds], 0)
        norm = len(self.kinds) * inv / inv.sum(0, keepdim=True).clamp_min(1e-12)
        return {k: norm[i] for i, k in enumerate(self.kinds)}

    def auxiliary_losses(self, out: ModelOutput, mask: Mapping[str, Tensor] | None = None, labels: Tensor | None = None) -> dict[str, Tensor]:
        """``{"distill": (1 - lambda) / lambda * L_distill}`` plus the student's own terms."""
        internals = out.fusion
        if not isinstance(internals, DistillInternals):  # an evaluation-mode output: nothing to distil
            inner = self.model.auxiliary_losses(out, mask, labels) if isinstance(self.model, HasAuxiliaryLosses) else {}
            return dict(inner)
        own = out._replace(fusion=internals.fusion)
        terms = dict(self.model.auxiliary_losses(own, mask, labels)) if isinstance(self.model, HasAuxiliaryLosses) else {}
        if self.lam == 1.0:
            return terms
        w = self.sample_weights(internals, labels)
        total = out.logits.new_zeros(())
        for k in self.kinds:
            kl = kl_per_sample(internals.teacher[k], internals.student[k], self.temperature)
            keep = internals.present[k].to(kl.dtype)
            total = total + (w[k] * kl * keep).sum() / keep.sum().clamp_min(1.0)
        terms["distill"] = (1 - self.lam) / self.lam * total
        return terms
