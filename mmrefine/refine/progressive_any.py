"""Progressive Fusion (Shankar et al.) around any architecture: MulT, UCRN, the early-fusion
transformer, MMAE, ... (anything returning a :class:`~mmrefine.core.ModelOutput`).

The injection point is the architecture's input: the back-projected fused vector of
the previous step is added to every modality's input, broadcast over time for
sequences::

    x_m^(t) = x_m + W_m(c_{t-1})       W_m: fused_dim -> d_m, added to every step of a (T, d_m) sequence
                                       (or -> prod(shape) for any other input, reshaped)
    c_0 = 0,   out_t = F(x^(t)),   c_t = out_t.fused,   t = 1..R,   y = out_R.logits

A model whose inputs cannot take a sum (MMBT: token ids) declares its own injection
point (:class:`~mmrefine.core.protocols.AcceptsContext`): ``W_m: fused_dim ->
context_dims[m]`` and ``out_t = F(x, context={m: W_m(c_{t-1})})`` (for MMBT: added to
modality m's token embeddings, text and extra tokens alike).

For sequence models this is "added to the input tokens" of each modality (before their
projection), the transformer-model variant of the paper (its MAG-XLNet, MIM and
financial-data transformers receive the context at the input). ``W_m`` has no bias,
so ``W_m(0) = 0`` and step 1 is exactly the wrapped architecture, after any amount
of training; with ``zero_init`` every step is. ``iterative=True`` is the paper's
ablation (``W_m`` maps modality m's own previous feature). The output's ``steps``
are ``(c_1, ..., c_R)``, ``fusion`` a :class:`ProgressiveInternals` (the last step's
internals and every step's ``features``), and the wrapped model's auxiliary terms
(e.g. UCRN's ``mjs``) are computed on the last step.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from torch import Tensor, nn

from mmrefine.core.errors import ConfigError
from mmrefine.core.mask import full_mask
from mmrefine.core.output import ModelOutput
from mmrefine.core.protocols import AcceptsContext, HasAuxiliaryLosses, check_model
from mmrefine.refine.progressive import ProgressiveInternals, back_projection
from mmrefine.refine.wrapper import ModelWrapper


class InputProgressiveFusion(ModelWrapper):
    """See module docstring.

    Args:
        model: any :class:`~mmrefine.core.MultimodalModel`.
        input_shapes: ``{modality: per-sample shape}`` of its inputs (set by the builder from the data).
        steps: R, unrolled steps (``c_0 = 0``).
        backprojection: ``linear`` or ``mlp`` for ``W_m``.
        hidden: hidden width of an ``mlp`` back-projection.
        iterative: the paper's ablation, each modality fed back its own previous feature.
        zero_init: start every ``W_m`` at zero (the model then equals the wrapped one).
    """

    def __init__(self, model: nn.Module, input_shapes: Mapping[str, Sequence[int]], steps: int = 2, backprojection: str = "linear",
                 hidden: int = 128, iterative: bool = False, zero_init: bool = False) -> None:
        super().__init__()
        check_model(model, "progressive")
        if steps < 1:
            raise ConfigError(f"progressive.steps must be >= 1, got {steps}")
        self.model, self.steps, self.iterative = model, steps, iterative
        self.input_shapes = {m: tuple(int(d) for d in input_shapes[m]) for m in model.modalities}
        self.backprojections = nn.ModuleDict()
        self.context_dims = dict(model.context_dims) if isinstance(model, AcceptsContext) else None
        for m, shape in self.input_shapes.items():
            if self.context_dims is not None:  # the model's own injection point
                width = int(self.context_dims[m])
            else:
                width = shape[-1] if len(shape) == 2 else math.prod(shape)  # a (T, d) sequence gets d, broadcast over T
            src = model.feature_dims[m] if iterative else model.fused_dim
            self.backprojections[m] = back_projection(src, width, backprojection, hidden, zero_init)

    def _inject(self, x: Tensor, ctx: Tensor, m: str) -> Tensor:
        if len(self.input_shapes[m]) == 2:
            return x + ctx[:, None, :]
        return x + ctx.view(x.shape)

    def forward(self, inputs: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> ModelOutput:
        mask = dict(mask) if mask is not None else full_mask(inputs)
        out = self.model(inputs, mask)  # step 1: c_0 = 0 and W(0) = 0, so the inputs are unchanged
        steps, step_features = [out.fused], [out.features]
        for _ in range(self.steps - 1):
            src = out.features if self.iterative else {m: out.fused for m in self.modalities}
            ctx = {m: self.backprojections[m](src[m]) for m in self.modalities}
            if self.context_dims is not None:
                out = self.model(inputs, mask, context=ctx)
            else:
                out = self.model({m: self._inject(inputs[m], ctx[m], m) for m in self.modalities}, mask)
            steps.append(out.fused)
            step_features.append(out.features)
        return ModelOutput(out.logits, out.fused, out.features, ProgressiveInternals(out.fusion, tuple(step_features)), tuple(steps))

    def auxiliary_losses(self, out: ModelOutput, mask: Mapping[str, Tensor] | None = None, labels: Tensor | None = None) -> dict[str, Tensor]:
        """The wrapped model's own terms, on the last step."""
        if not isinstance(self.model, HasAuxiliaryLosses):
            return {}
        internals = out.fusion
        inner = out._replace(fusion=internals.fusion if isinstance(internals, ProgressiveInternals) else internals, steps=None)
        return dict(self.model.auxiliary_losses(inner, mask, labels))
