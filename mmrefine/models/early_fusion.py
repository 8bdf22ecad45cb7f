"""Single-stream early-fusion transformer (MMBT-style) exposing every layer.

Each modality's input (a sequence ``(T_m, d_m)`` or a vector, one token) is
projected to width d and given a learned segment embedding ``e_m``; a [CLS]
token leads; positions are sinusoidal over the whole stream::

    tokens = [CLS; W_1 x_1 + e_1; ...; W_M x_M + e_M] + PE
    H^0 = tokens,  H^l = Layer_l(H^{l-1})   l = 1..L   (pre-LayerNorm)

Tokens of absent modalities are masked out of attention. The output exposes
``hidden_states`` ``(LN(H^0), ..., LN(H^L))``, every layer through the final
LayerNorm (pre-LN layers leave their outputs unnormalised, so a pooling over
two layers compares like with like only after the same norm), and each
modality's token ``spans``. Everything below reads these normalised states.

* fused embedding: the masked mean over all present tokens of layer ``L - k + 1``
  (``fused_depth`` = k, MMF's ``average_k_from_last``), or the [CLS] state
  (``fused="cls"``);
* per-modality features (the Refiner's targets) pool that modality's span
  over the last layers (Refiner, Sankaran et al., Table 5), with ``s_l`` the span's token mean
  and ``S_l`` its token sum at layer l:

  ======================  =======================  =======
  ``target_pooling``      value                    width
  ======================  =======================  =======
  ``avg_last``            ``s_L``                  d
  ``avg_last2``           ``(s_L + s_{L-1}) / 2``  d
  ``sum_last``            ``S_L``                  d
  ``sum_last2``           ``S_L + S_{L-1}``        d
  ``concat_last2``        ``[s_L; s_{L-1}]``       2d
  ======================  =======================  =======
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from mmrefine.core.errors import ConfigError
from mmrefine.core.layers import sinusoidal_positions
from mmrefine.core.mask import check_modalities, zero_absent
from mmrefine.core.output import ModelOutput
from mmrefine.core.protocols import parameter_dtype
from mmrefine.models.registry import ARCHITECTURES
from mmrefine.models.transformer import EncoderLayer, as_sequence

POOLINGS = ("avg_last", "avg_last2", "sum_last", "sum_last2", "concat_last2")


class EarlyFusionInternals(NamedTuple):
    hidden_states: tuple[Tensor, ...]  # L + 1 tensors (B, N, d)
    spans: dict[str, tuple[int, int]]  # modality -> [start, end) token positions
    token_mask: Tensor  # (B, N) True where the token is present


def pool_span(hidden_states: Sequence[Tensor], token_mask: Tensor, span: tuple[int, int], pooling: str) -> Tensor:
    """Pool one modality's span over the last layers (see module docstring)."""
    a, b = span
    w = token_mask[:, a:b, None].to(hidden_states[-1].dtype)
    n = w.sum(1).clamp_min(1)
    total = lambda h: (h[:, a:b] * w).sum(1)  # noqa: E731
    last, prev = hidden_states[-1], hidden_states[-2]
    if pooling == "avg_last":
        return total(last) / n
    if pooling == "avg_last2":
        return (total(last) + total(prev)) / (2 * n)
    if pooling == "sum_last":
        return total(last)
    if pooling == "sum_last2":
        return total(last) + total(prev)
    if pooling == "concat_last2":
        return torch.cat([total(last) / n, total(prev) / n], dim=-1)
    raise ConfigError(f"target_pooling must be one of {POOLINGS}, got '{pooling}'")


@ARCHITECTURES.register("early_fusion_transformer")
class EarlyFusionTransformer(nn.Module):
    """See module docstring.

    Args:
        input_shapes: ``{modality: per-sample shape}`` (set by the builder from the data).
        out_dim: number of outputs (set by the builder from the task).
        d: token width.
        heads: attention heads.
        layers: transformer layers L.
        dropout: dropout in attention and feed-forward blocks.
        fused: ``mean`` (masked mean of present tokens) or ``cls``.
        fused_depth: k, the layer ``L - k + 1`` whose tokens are averaged for ``mean``.
        target_pooling: how Refiner targets pool a modality's span (see the table above).
        attn_dropout: dropout on the attention weights (None: ``dropout``). At 0 the attention
            runs as one fused kernel; with torch's masks, sampling one over every (token, token)
            pair is a quarter of a training step on CPU (``docs/performance.md``).
        fast_dropout: draw every dropout mask with the cheap CPU sampler
            (:mod:`mmrefine.core.dropout`; same model and parameters, another random draw).
    """

    def __init__(
        self,
        input_shapes: Mapping[str, Sequence[int]],
        out_dim: int,
        d: int = 64,
        heads: int = 4,
        layers: int = 2,
        dropout: float = 0.1,
        fused: str = "mean",
        fused_depth: int = 1,
        target_pooling: str = "avg_last",
        attn_dropout: float | None = None,
        fast_dropout: bool = False,
    ) -> None:
        super().__init__()
        if target_pooling not in POOLINGS:
            raise ConfigError(f"target_pooling must be one of {POOLINGS}, got '{target_pooling}'")
        if attn_dropout is not None and not 0 <= attn_dropout < 1:
            raise ConfigError(f"attn_dropout must be in [0, 1), got {attn_dropout}")
        if fused not in ("mean", "cls"):
            raise ConfigError(f"fused must be 'mean' or 'cls', got '{fused}'")
        if not 1 <= fused_depth <= layers:
            raise ConfigError(f"fused_depth must be in [1, {layers}], got {fused_depth}")
        if layers < 2 and target_pooling != "avg_last" and target_pooling != "sum_last":
            raise ConfigError(f"target_pooling '{target_pooling}' needs at least 2 layers")
        self.modalities = list(input_shapes)
        self.input_shapes = {m: tuple(s) for m, s in input_shapes.items()}
        self.d, self.fused, self.fused_depth, self.target_pooling = d, fused, fused_depth, target_pooling
        self.proj = nn.ModuleDict({m: nn.Linear(int(s[-1]), d) for m, s in input_shapes.items()})
        self.segment = nn.Parameter(torch.randn(len(self.modalities), d) * 0.02)
        self.cls = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.layers = nn.ModuleList(
            EncoderLayer(d, heads, 4 * d, dropout, fast_dropout) for _ in range(layers)
        )
        if attn_dropout is not None:  # dropout on the attention weights alone (the layers' `dropout` elsewhere)
            for layer in self.layers:
                layer.self_attn.dropout = attn_dropout
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, out_dim)
        lengths = {m: 1 if len(s) == 1 else int(s[0]) for m, s in input_shapes.items()}
        self.spans: dict[str, tuple[int, int]] = {}
        pos = 1
        for m in self.modalities:
            self.spans[m] = (pos, pos + lengths[m])
            pos += lengths[m]
        self.n_tokens = pos

    @property
    def fused_dim(self) -> int:
        return self.d

    @property
    def feature_dims(self) -> dict[str, int]:
        return {m: 2 * self.d if self.target_pooling == "concat_last2" else self.d for m in self.modalities}

    def forward(self, inputs: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> ModelOutput:
        mask = check_modalities("early-fusion transformer", self.modalities, inputs, mask, self.input_shapes, parameter_dtype(self))
        b = next(iter(inputs.values())).shape[0]
        parts, present = [self.cls.expand(b, 1, self.d)], [torch.ones(b, 1, dtype=torch.bool, device=self.cls.device)]
        for i, m in enumerate(self.modalities):
            x = as_sequence(zero_absent(inputs[m], mask[m]))
            parts.append(self.proj[m](x) + self.segment[i])
            present.append(mask[m][:, None].expand(b, x.shape[1]))
        h = torch.cat(parts, 1)
        h = h + sinusoidal_positions(h.shape[1], self.d).to(h)
        token_mask = torch.cat(present, 1)
        states = [self.norm(h)]
        for layer in self.layers:
            h = layer(h, src_key_padding_mask=~token_mask)
            states.append(self.norm(h))
        if self.fused == "cls":
            z = states[-1][:, 0]
        else:
            src = states[len(states) - self.fused_depth]
            w = token_mask[..., None].to(src.dtype)
            z = (src * w).sum(1) / w.sum(1)
        features = {m: pool_span(states, token_mask, self.spans[m], self.target_pooling) for m in self.modalities}
        return ModelOutput(self.head(z), z, features, EarlyFusionInternals(tuple(states), dict(self.spans), token_mask))
