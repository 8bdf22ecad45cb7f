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
* ``meta``: ``w(i) = K softmax_k(g_phi([softmax(t(x^k_i))]_k))``, a small network on
  the teacher's outputs for every input, learned by a one-step look-ahead: with
  ``L_in(theta, phi) = CE(s(x), y) + sum_k mean_i w_k(i) KL_k(i)`` and
  ``theta' = theta - eta grad_theta L_in``, ``phi`` takes an SGD step (``meta_lr``) on
  the cross-entropy of ``s_theta'`` on a held-out batch (from the validation split,
  set by the engine with :meth:`set_held_out`); the student then trains with the
  updated weights (detached). About three times the cost of a plain step.

Logits are read as class scores (softmax), so this is for classification
tasks. The teacher is held outside the module tree: it is not trained, not
saved in checkpoints and not exported; :meth:`inference_model` is the student.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmrefine.core.dropout import twice_differentiable
from mmrefine.core.errors import BatchError, ConfigError
from mmrefine.core.mask import full_mask
from mmrefine.core.output import ModelOutput
from mmrefine.core.protocols import HasAuxiliaryLosses, check_model
from mmrefine.refine.wrapper import ModelWrapper

WEIGHTINGS = ("population", "importance", "correctness", "meta")


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


class ModalityDistiller(ModelWrapper):
    """See module docstring.

    Args:
        model: the student, any :class:`~mmrefine.core.MultimodalModel`.
        teacher: a trained model over the same modalities and outputs (kept frozen).
        weighting: ``population``, ``importance``, ``correctness`` or ``meta``.
        temperature: ``tau``.
        lam: ``lambda`` in (0, 1], the weight of the task loss (1: no distillation).
        weights: ``population`` weights by input kind (``all`` and modality names; default 1).
        single: distil on the single-modality inputs too (False: plain KD on the full input).
        num_outputs: number of classes (set by the builder from the task; needed by ``meta``).
        meta_hidden: hidden width of the ``meta`` weight network.
        meta_lr: SGD step of the weight network (``meta``).
        lookahead_lr: ``eta``, the virtual step of the student (``meta``).
    """

    def __init__(self, model: nn.Module, teacher: nn.Module, weighting: str = "population", temperature: float = 1.0,
                 lam: float = 0.5, weights: Mapping[str, float] | None = None, single: bool = True, num_outputs: int | None = None,
                 meta_hidden: int = 32, meta_lr: float = 0.01, lookahead_lr: float = 0.1) -> None:
        super().__init__()
        check_model(model, "distill")
        check_model(teacher, "distill teacher")
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
        self.meta_lr, self.lookahead_lr = meta_lr, lookahead_lr
        self.weight_net: nn.Module | None = None
        self._held_out: Any = None
        if weighting == "meta":
            if num_outputs is None:
                raise ConfigError("distill.weighting 'meta' needs num_outputs (the number of classes)")
            k = len(self.kinds)
            self.weight_net = nn.Sequential(nn.Linear(k * num_outputs, meta_hidden), nn.ReLU(), nn.Linear(meta_hidden, k))
            nn.init.zeros_(self.weight_net[-1].weight)  # start from equal weights
            nn.init.zeros_(self.weight_net[-1].bias)

    def set_held_out(self, batches: Any) -> None:
        """An iterable of labelled batches for the ``meta`` look-ahead (cycled)."""
        self._held_out = batches
        self._held_out_iter = None

    def _next_held_out(self) -> Any:
        if self._held_out is None:
            raise ConfigError("distill.weighting 'meta' needs held-out batches: the engine sets the validation split")
        for _ in range(2):
            if self._held_out_iter is None:
                self._held_out_iter = iter(self._held_out)
            try:
                return next(self._held_out_iter)
            except StopIteration:
                self._held_out_iter = None
        raise ConfigError("distill.weighting 'meta': the held-out split is empty")

    def _meta_weights(self, internals: DistillInternals) -> Tensor:
        probs = torch.cat([internals.teacher[k].softmax(-1) for k in self.kinds], 1)
        return len(self.kinds) * torch.softmax(self.weight_net(probs), 1)  # (B, K), mean 1

    def _meta_step(self, internals: DistillInternals, labels: Tensor) -> None:
        """One look-ahead update of the weight network (see module docstring)."""
        from torch.func import functional_call

        params = {n: p for n, p in self.model.named_parameters() if p.requires_grad}
        w = self._meta_weights(internals)
        inner = F.cross_entropy(internals.student["all"], labels)
        for i, k in enumerate(self.kinds):
            kl = kl_per_sample(internals.teacher[k], internals.student[k], self.temperature)
            keep = internals.present[k].to(kl.dtype)
            inner = inner + (w[:, i] * kl * keep).sum() / keep.sum().clamp_min(1.0)
        grads = torch.autograd.grad(inner, list(params.values()), create_graph=True, retain_graph=True, allow_unused=True)
        ahead = {n: p if g is None else p - self.lookahead_lr * g for (n, p), g in zip(params.items(), grads)}
        batch = self._next_held_out()
        device = internals.teacher["all"].device
        x = {m: v.to(device) for m, v in batch.inputs.items()}
        mask = {m: v.to(device) for m, v in batch.mask.items()}
        state = {**dict(self.model.named_buffers()), **dict(self.model.named_parameters()), **ahead}
        outer = F.cross_entropy(functional_call(self.model, state, (x, mask)).logits, batch.labels.to(device))
        meta_params = list(self.weight_net.parameters())
        meta_grads = torch.autograd.grad(outer, meta_params, allow_unused=True)
        with torch.no_grad():
            for p, g in zip(meta_params, meta_grads):
                if g is not None:
                    p.sub_(self.meta_lr * g)

    # the teacher follows the student's device and dtype, and stays in eval mode
    def _apply(self, fn: Any, recurse: bool = True) -> "ModalityDistiller":
        super()._apply(fn, recurse)
        self.teacher._apply(fn)
        return self

    def train(self, mode: bool = True) -> "ModalityDistiller":
        super().train(mode)
        self.teacher.eval()
        return self

    def inference_model(self) -> nn.Module:
        """The student: what to export and deploy."""
        return self.model

    def forward(self, inputs: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> ModelOutput:
        if self.weighting == "meta" and self.training:  # the look-ahead differentiates the student's gradients
            with twice_differentiable():
                return self._forward(inputs, mask)
        return self._forward(inputs, mask)

    def _forward(self, inputs: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None) -> ModelOutput:
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
        if self.weighting == "meta":
            w = self._meta_weights(internals).detach()
            return {k: w[:, i] for i, k in enumerate(self.kinds)}
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
        if self.weighting == "meta" and labels is not None and self.training:
            self._meta_step(internals, labels)
        w = self.sample_weights(internals, labels)
        total = out.logits.new_zeros(())
        for k in self.kinds:
            kl = kl_per_sample(internals.teacher[k], internals.student[k], self.temperature)
            keep = internals.present[k].to(kl.dtype)
            total = total + (w[k] * kl * keep).sum() / keep.sum().clamp_min(1.0)
        terms["distill"] = (1 - self.lam) / self.lam * total
        return terms
