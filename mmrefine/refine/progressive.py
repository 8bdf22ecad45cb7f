"""Progressive Fusion (Shankar et al., AAAI 2022): back-project the fused vector into the
unimodal encoders and unroll R steps.

    Ĝ_m(x_m, c) = G_m(x_m ⊕ W_m(c))
    c_0 = 0,   c_t = A(Ĝ_1(x_1, c_{t-1}), ..., Ĝ_M(x_M, c_{t-1})),   t = 1..R
    y = P(c_R)

* ``W_m`` is a back-projection, ``linear`` or ``mlp`` (one hidden ReLU layer of
  width ``hidden``), shared across steps; gradients flow through every step.
  Its layers have no bias, so ``W_m(0) = 0`` by construction, at
  initialisation and after any amount of training: with ``c_0 = 0`` the first
  step is exactly the base model, ``Ĝ_m(x_m, 0) = G_m(x_m)`` (a bias would make
  ``W_m(0) = b`` and break this once it trains).
* ``⊕`` (``mode``): ``add`` adds ``W_m(c)`` to the input of the encoder
  submodule named by ``inject_at`` (``None``: the encoder input itself), so the
  context can enter any layer of any encoder; ``concat`` concatenates
  ``W_m(c)`` (width ``concat_dim``) to a flat encoder input, which must then
  have been built ``concat_dim`` wider (the config builder does this).
  Concatenation before a linear layer equals adding a projection after it, so
  ``add`` at the output of a first linear layer is the same model family.
* ``iterative=True`` is the paper's ablation: each encoder receives
  ``W_m(F_m^{t-1})``, its own previous output, instead of the fused vector (no
  cross-modal information flows back).
* ``zero_init=True`` starts every ``W_m`` at zero; with ``W_m = 0`` the model
  equals the base model exactly (tested for every fusion module), since
  ``x + 0 = x`` and each step then repeats the base computation.

The output's ``steps`` holds ``(c_1, ..., c_R)``; ``fused`` is ``c_R``;
``features`` are the last step's; ``fusion`` is a :class:`ProgressiveInternals`
with the last step's fusion output (GMU gates, ...) and every step's unimodal
representations (for linear probes per step). Cost grows linearly in R.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from mmrefine.core.errors import ConfigError, ContractError
from mmrefine.core.mask import check_modalities, zero_absent
from mmrefine.core.output import ModelOutput
from mmrefine.core.protocols import parameter_dtype
from mmrefine.models.fusion_model import FusionModel

MODES = ("add", "concat")


class ProgressiveInternals(NamedTuple):
    fusion: Any  # the wrapped fusion module's output at the last step
    step_features: tuple[dict[str, Tensor], ...]  # Ĝ_m outputs at every step


def back_projection(in_dim: int, out_dim: int, kind: str, hidden: int, zero_init: bool) -> nn.Module:
    """``W(c)``, bias-free so that ``W(0) = 0`` (see module docstring)."""
    if kind == "linear":
        net = nn.Sequential(nn.Linear(in_dim, out_dim, bias=False))
    elif kind == "mlp":
        net = nn.Sequential(nn.Linear(in_dim, hidden, bias=False), nn.ReLU(), nn.Linear(hidden, out_dim, bias=False))
    else:
        raise ConfigError(f"progressive.backprojection must be 'linear' or 'mlp', got '{kind}'")
    if zero_init:
        nn.init.zeros_(net[-1].weight)
    return net


class ProgressiveFusion(nn.Module):
    """See module docstring. ``input_shapes`` are the per-sample input shapes of
    the base model's encoders (as the data provides them).

    Args:
        model: the base :class:`~mmrefine.models.FusionModel` (encoders + fusion + head).
        input_shapes: ``{modality: per-sample shape}`` of the encoders' inputs.
        steps: R, unrolled steps (``c_0 = 0``).
        backprojection: ``linear`` or ``mlp`` for ``W_m``.
        hidden: hidden width of an ``mlp`` back-projection.
        mode: ``add`` or ``concat`` (see above).
        inject_at: encoder submodule whose input receives the context (one name for all, or per modality;
            None: the encoder input).
        concat_dim: width of ``W_m(c)`` in ``concat`` mode.
        iterative: the paper's ablation, each encoder fed back its own previous output.
        zero_init: start every ``W_m`` at zero (the model then equals the base model).
    """

    def __init__(
        self,
        model: FusionModel,
        input_shapes: Mapping[str, Sequence[int]],
        steps: int = 2,
        backprojection: str = "linear",
        hidden: int = 128,
        mode: str = "add",
        inject_at: str | Mapping[str, str | None] | None = None,
        concat_dim: int = 16,
        iterative: bool = False,
        zero_init: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(model, FusionModel):
            raise ContractError(f"ProgressiveFusion wraps a FusionModel (encoders + fusion + head), got {type(model).__name__}")
        if steps < 1:
            raise ConfigError(f"progressive.steps must be >= 1, got {steps}")
        if mode not in MODES:
            raise ConfigError(f"progressive.mode must be one of {MODES}, got '{mode}'")
        self.model = model
        self.steps = steps
        self.mode = mode
        self.iterative = iterative
        self.input_shapes = {m: tuple(int(d) for d in input_shapes[m]) for m in model.modalities}
        points = inject_at if isinstance(inject_at, Mapping) else {m: inject_at for m in model.modalities}
        unknown = set(points) - set(model.modalities)
        if unknown:
            raise ConfigError(f"progressive.inject_at: unknown modality {sorted(unknown)}")
        self.inject_at = {m: points.get(m) for m in model.modalities}
        if mode == "concat" and any(p is not None for p in self.inject_at.values()):
            raise ConfigError("progressive: mode 'concat' applies to the encoder input; leave inject_at unset")
        self._context: dict[str, Tensor] = {}
        self.backprojections = nn.ModuleDict()
        for m in model.modalities:
            src = model.feature_dims[m] if iterative else model.fused_dim
            self.backprojections[m] = back_projection(src, self._target_numel(m, concat_dim), backprojection, hidden, zero_init)
            if self.inject_at[m] is not None:
                self._hook(m)

    # ------------------------------------------------------------ injection
    def _submodule(self, m: str) -> nn.Module:
        name = self.inject_at[m]
        try:
            return self.model.encoders[m].get_submodule(name)
        except AttributeError as exc:
            names = [n for n, _ in self.model.encoders[m].named_modules() if n]
            raise ConfigError(f"progressive.inject_at: encoder '{m}' has no submodule '{name}'; it has {names}") from exc

    def _target_numel(self, m: str, concat_dim: int) -> int:
        shape = self.input_shapes[m]
        if self.mode == "concat":
            if len(shape) != 1:
                raise ConfigError(f"progressive: mode 'concat' needs flat inputs; '{m}' has shape {shape}")
            return concat_dim
        if self.inject_at[m] is None:
            return math.prod(shape)
        seen: dict[str, tuple[int, ...]] = {}

        def capture(module: nn.Module, args: tuple) -> None:  # a pre-hook returning a value would replace the input
            seen["s"] = tuple(args[0].shape[1:])

        handle = self._submodule(m).register_forward_pre_hook(capture)
        was = self.model.encoders[m].training
        try:
            self.model.encoders[m].eval()
            with torch.no_grad():
                self.model.encoders[m](torch.zeros(2, *shape))
        finally:
            handle.remove()
            self.model.encoders[m].train(was)
        return math.prod(seen["s"])

    def _hook(self, m: str) -> None:
        def add_context(module: nn.Module, args: tuple) -> tuple:
            ctx = self._context.get(m)
            if ctx is None:
                return args
            return (args[0] + ctx.view(args[0].shape), *args[1:])

        self._submodule(m).register_forward_pre_hook(add_context)

    # ------------------------------------------------------------ interface
    @property
    def modalities(self) -> list[str]:
        return self.model.modalities

    @property
    def fused_dim(self) -> int:
        return self.model.fused_dim

    @property
    def fused_slots(self) -> dict[str, tuple[int, int]] | None:
        return self.model.fused_slots

    @property
    def feature_dims(self) -> dict[str, int]:
        return self.model.feature_dims

    def _encode(self, m: str, x: Tensor, ctx: Tensor) -> Tensor:
        enc = self.model.encoders[m]
        if self.mode == "concat":
            return enc(torch.cat([x, ctx], dim=1))
        if self.inject_at[m] is None:
            return enc(x + ctx.view(x.shape))
        self._context[m] = ctx
        try:
            return enc(x)
        finally:
            self._context.pop(m, None)

    def forward(self, inputs: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> ModelOutput:
        mask = check_modalities("ProgressiveFusion", self.modalities, inputs, mask, self.input_shapes, parameter_dtype(self))
        xs = {m: zero_absent(inputs[m], mask[m]) for m in self.modalities}
        b = next(iter(xs.values())).shape[0]
        ref = next(iter(xs.values()))
        c = ref.new_zeros(b, self.fused_dim)
        prev = {m: ref.new_zeros(b, d) for m, d in self.feature_dims.items()}
        steps, step_features = [], []
        for _ in range(self.steps):
            features = {}
            for m in self.model.modalities:
                src = prev[m] if self.iterative else c
                features[m] = self._encode(m, xs[m], self.backprojections[m](src))
            fo = self.model.fusion(features, mask)
            c, prev = fo.fused, features
            steps.append(c)
            step_features.append(features)
        return ModelOutput(self.model.head(c), c, features, ProgressiveInternals(fo, tuple(step_features)), tuple(steps))
