"""UCRN: unimodal and crossmodal refinement network (Guo et al., EMNLP 2021).

Per modality m (input a sequence ``(T_m, d_m)`` or a vector, taken as T = 1)::

    P_m   = Conv1d_k=1(x_m)                       projection to width d (no bias)
    U_m   = TransformerEncoder_m(P_m)             unimodal refinement (layers, heads)
    u_m   = U_m[:, -1]  or  sum_t a_t U_m[:, t]   last step, or learned temporal projection
    s_m   = sigmoid(W2 ReLU(W1 mean(u_m)))        self-quality weights (squeeze-and-excitation)
    ũ_m   = s_m ⊙ u_m

Multimodal Jensen-Shannon regulariser on ``p_m = softmax(u_m)``::

    JS(p, q) = 1/2 KL(p || (p+q)/2) + 1/2 KL(q || (p+q)/2)
    L_M = sum over modality pairs of the mean JS over samples where both are present

(the public reimplementation feeds raw features to ``kl_div`` as
log-probabilities, which is not a JS divergence; this is the paper's version).

Crossmodal refinement over any non-empty subset of modalities:

* ``cross_mode="concat"`` (the paper): ``z = Transformer([ũ_1; ...; ũ_M])`` on
  the concatenation (width M·d, sequence length 1), absent modalities zero;
* ``cross_mode="tokens"``: the ũ_m (plus a learned modality embedding) are the
  tokens of a width-d transformer, absent modalities masked out of attention,
  then a masked mean.

Then two FC layers with a residual connection predict the output. The loss is
``L = lambda_c L_C + lambda_m L_M``: ``L_M`` is returned by
:meth:`auxiliary_losses` (name ``mjs``), weighted by ``mjs_weight``.
"""

from __future__ import annotations

import itertools
from typing import Mapping, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmrefine.core.dropout import dropout_layer
from mmrefine.core.errors import ConfigError
from mmrefine.core.mask import check_modalities, zero_absent
from mmrefine.core.output import ModelOutput
from mmrefine.core.protocols import parameter_dtype
from mmrefine.models.registry import ARCHITECTURES
from mmrefine.models.transformer import CrossmodalTransformer, as_sequence


def js_divergence(p: Tensor, q: Tensor, eps: float = 1e-12) -> Tensor:
    """Per-row Jensen-Shannon divergence (natural log) of probability rows."""
    m = 0.5 * (p + q)
    kl = lambda a, b: (a * (torch.log(a + eps) - torch.log(b + eps))).sum(-1)  # noqa: E731
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


class SelfQuality(nn.Module):
    """``s = sigmoid(W2 ReLU(W1 u))`` (no biases), ``u * s``; hidden width ``max(1, d // r)``."""

    def __init__(self, d: int, reduction: int = 16) -> None:
        super().__init__()
        h = max(1, d // reduction)
        self.net = nn.Sequential(nn.Linear(d, h, bias=False), nn.ReLU(), nn.Linear(h, d, bias=False), nn.Sigmoid())

    def forward(self, u: Tensor) -> tuple[Tensor, Tensor]:
        s = self.net(u)
        return u * s, s


class UCRNInternals(NamedTuple):
    refined: dict[str, Tensor]  # u_m, before self-quality weighting
    quality: dict[str, Tensor]  # s_m


@ARCHITECTURES.register("ucrn")
class UCRN(nn.Module):
    """See module docstring.

    Args:
        input_shapes: ``{modality: per-sample shape}`` (set by the builder from the data).
        out_dim: number of outputs (set by the builder from the task).
        d: width of the unimodal transformers.
        heads: attention heads.
        layers: layers of each unimodal transformer.
        cross_layers: layers of the crossmodal transformer.
        cross_mode: ``concat`` (the paper: one token, the concatenation) or ``tokens`` (one token per
            modality).
        pooling: ``last`` step or learned ``temporal`` weights.
        sq_reduction: reduction ratio of the self-quality layers.
        attn_dropout: dropout on attention weights.
        relu_dropout: dropout after the feed-forward activation.
        res_dropout: dropout on residual branches.
        embed_dropout: dropout on the inputs.
        out_dropout: dropout in the output head.
        mjs_weight: weight of the multimodal Jensen-Shannon regulariser (0: none).
        causal: mask future steps in attention.
        fast_dropout: draw every dropout mask with the cheap CPU sampler
            (:mod:`mmrefine.core.dropout`; same model and parameters, another random draw).
    """

    def __init__(
        self,
        input_shapes: Mapping[str, Sequence[int]],
        out_dim: int,
        d: int = 30,
        heads: int = 3,
        layers: int = 5,
        cross_layers: int = 5,
        cross_mode: str = "concat",
        pooling: str = "last",
        sq_reduction: int = 16,
        attn_dropout: float = 0.1,
        relu_dropout: float = 0.1,
        res_dropout: float = 0.1,
        embed_dropout: float = 0.25,
        out_dropout: float = 0.5,
        mjs_weight: float = 1.0,
        causal: bool = False,
        fast_dropout: bool = False,
    ) -> None:
        super().__init__()
        if cross_mode not in ("concat", "tokens"):
            raise ConfigError(f"ucrn.cross_mode must be 'concat' or 'tokens', got '{cross_mode}'")
        if pooling not in ("last", "temporal"):
            raise ConfigError(f"ucrn.pooling must be 'last' or 'temporal', got '{pooling}'")
        self.modalities = list(input_shapes)
        self.input_shapes = {m: tuple(s) for m, s in input_shapes.items()}
        self.d, self.cross_mode, self.pooling, self.mjs_weight = d, cross_mode, pooling, mjs_weight
        shapes = {m: (1, int(s[0])) if len(s) == 1 else (int(s[0]), int(s[1])) for m, s in input_shapes.items()}
        self.proj = nn.ModuleDict({m: nn.Conv1d(s[1], d, 1, bias=False) for m, s in shapes.items()})
        kw = dict(attn_dropout=attn_dropout, relu_dropout=relu_dropout, res_dropout=res_dropout, embed_dropout=embed_dropout, causal=causal,
                  fast_dropout=fast_dropout)
        self.unimodal = nn.ModuleDict({m: CrossmodalTransformer(d, heads, layers, cross=False, **kw) for m in self.modalities})
        if pooling == "temporal":
            self.temporal = nn.ModuleDict({m: nn.Linear(s[0], 1, bias=False) for m, s in shapes.items()})
        self.quality = nn.ModuleDict({m: SelfQuality(d, sq_reduction) for m in self.modalities})
        width = d * len(self.modalities) if cross_mode == "concat" else d
        if cross_mode == "tokens":
            self.modality_embedding = nn.Parameter(torch.zeros(len(self.modalities), d))
        self.cross = CrossmodalTransformer(width, heads, cross_layers, cross=False, **kw)
        self.fc1, self.fc2 = nn.Linear(width, width), nn.Linear(width, width)
        self.out = nn.Linear(width, out_dim)
        self.out_dropout = dropout_layer(out_dropout, fast_dropout)
        self.width = width

    @property
    def fused_dim(self) -> int:
        return self.width

    @property
    def feature_dims(self) -> dict[str, int]:
        return {m: self.d for m in self.modalities}

    def forward(self, inputs: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> ModelOutput:
        mask = check_modalities("UCRN", self.modalities, inputs, mask, self.input_shapes, parameter_dtype(self))
        pres = torch.stack([mask[m] for m in self.modalities], 1).to(next(iter(inputs.values())).dtype)  # (B, M)
        refined, quality, weighted = {}, {}, []
        for i, m in enumerate(self.modalities):
            x = as_sequence(zero_absent(inputs[m], mask[m]))
            h = self.unimodal[m](self.proj[m](x.transpose(1, 2)).transpose(1, 2))
            u = h[:, -1] if self.pooling == "last" else self.temporal[m](h.transpose(1, 2)).squeeze(-1)
            w, s = self.quality[m](u)
            refined[m], quality[m] = u, s
            weighted.append(w * pres[:, i, None])
        if self.cross_mode == "concat":
            z = self.cross(torch.cat(weighted, 1)[:, None, :])[:, 0]
        else:
            tokens = torch.stack(weighted, 1) + self.modality_embedding
            absent = pres == 0
            safe = absent & ~absent.all(1, keepdim=True)  # a row with nothing present attends to zeros
            h = self.cross(tokens, key_padding=safe)
            z = (h * pres[..., None]).sum(1) / pres.sum(1, keepdim=True).clamp_min(1)
        z = z + self.fc2(self.out_dropout(F.relu(self.fc1(z))))
        return ModelOutput(self.out(z), z, {m: quality[m] * refined[m] for m in self.modalities}, UCRNInternals(refined, quality))

    def auxiliary_losses(self, out: ModelOutput, mask: Mapping[str, Tensor] | None = None, labels: Tensor | None = None) -> dict[str, Tensor]:
        """``{"mjs": mjs_weight * L_M}`` (see module docstring)."""
        if self.mjs_weight == 0 or len(self.modalities) < 2:
            return {}
        refined = out.fusion.refined
        probs = {m: refined[m].softmax(-1) for m in self.modalities}
        total = next(iter(refined.values())).new_zeros(())
        for a, b in itertools.combinations(self.modalities, 2):
            js = js_divergence(probs[a], probs[b])
            if mask is not None:
                both = (mask[a] & mask[b]).to(js.dtype)
                total = total + (js * both).sum() / both.sum().clamp_min(1)
            else:
                total = total + js.mean()
        return {"mjs": self.mjs_weight * total}
