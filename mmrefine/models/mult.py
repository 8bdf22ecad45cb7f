"""MulT for N sequence modalities, with concat or GMU late fusion (MulT-GMU, Rodríguez-Bribiesca et al., MAI 2021).

For sequence modalities S (each ``(T_m, d_m)``)::

    X_m   = Conv1d_k=1(x_m)                                       projection to width d (no bias)
    Z_t<-s = CM_{t,s}(X_t, X_s)          for every ordered pair t != s   (crossmodal transformer)
    H_t   = SelfAttn_t([Z_t<-s for s != t])[:, -1]               per-target memory, last step
    late fusion:
      concat: h = [H_1; ...; H_N],  z = h + W2 Drop(ReLU(W1 h))   (MulT's residual head)
      gmu:    z = GMU({H_t} ∪ {e_k})                               e_k: extra non-sequence
                                                                   modalities (vectors) fed
                                                                   to the GMU directly (MulT-GMU)
    y = W_out z

Absent modalities are zeroed at the input; their ``H_t`` is zeroed (concat) or
gated out (GMU). The causal mask is off by default (see
:mod:`mmrefine.models.transformer`); the reference code has it on.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmrefine.core.dropout import dropout_layer
from mmrefine.core.errors import ConfigError
from mmrefine.core.mask import check_modalities, zero_absent
from mmrefine.core.output import ModelOutput
from mmrefine.core.protocols import parameter_dtype
from mmrefine.fusion.gmu import GMUFusion
from mmrefine.models.registry import ARCHITECTURES
from mmrefine.models.transformer import CrossmodalTransformer


class MulTInternals(NamedTuple):
    gates: Tensor | None  # GMU gates (B, M, gmu_dim) when fusion == "gmu"


@ARCHITECTURES.register("mult")
class MulT(nn.Module):
    """See module docstring. Modalities whose input is a vector ``(d,)`` are the
    "extra" non-sequence modalities; they need ``fusion="gmu"``, unless
    ``vectors_as_sequences`` reads each as a sequence of length 1 (as UCRN
    does; for utterance-level features such as CMU-MOSI's).

    Args:
        input_shapes: ``{modality: per-sample shape}`` (set by the builder from the data).
        out_dim: number of outputs (set by the builder from the task).
        d: width of every crossmodal transformer.
        heads: attention heads.
        layers: layers per crossmodal transformer.
        fusion: ``concat`` (residual head over the concatenated last states) or ``gmu``.
        gmu_dim: width of the GMU output.
        attn_dropout: dropout on attention weights.
        relu_dropout: dropout after the feed-forward activation.
        res_dropout: dropout on residual branches.
        embed_dropout: dropout on the scaled, position-encoded inputs.
        out_dropout: dropout in the output head.
        causal: mask future steps in self- and cross-attention.
        fast_dropout: draw every dropout mask with the cheap CPU sampler
            (:mod:`mmrefine.core.dropout`; same model and parameters, another random draw).
        vectors_as_sequences: treat ``(d,)`` inputs as ``(1, d)`` sequences instead of GMU-only extras.
    """

    def __init__(
        self,
        input_shapes: Mapping[str, Sequence[int]],
        out_dim: int,
        d: int = 30,
        heads: int = 5,
        layers: int = 5,
        fusion: str = "concat",
        gmu_dim: int = 64,
        attn_dropout: float = 0.1,
        relu_dropout: float = 0.1,
        res_dropout: float = 0.1,
        embed_dropout: float = 0.25,
        out_dropout: float = 0.0,
        causal: bool = False,
        fast_dropout: bool = False,
        vectors_as_sequences: bool = False,
    ) -> None:
        super().__init__()
        if fusion not in ("concat", "gmu"):
            raise ConfigError(f"mult.fusion must be 'concat' or 'gmu', got '{fusion}'")
        self.lifted = [m for m, s in input_shapes.items() if len(s) == 1] if vectors_as_sequences else []
        self.sequence = [m for m, s in input_shapes.items() if len(s) == 2 or m in self.lifted]
        self.extra = [m for m, s in input_shapes.items() if len(s) == 1 and m not in self.lifted]
        if len(self.sequence) < 2:
            raise ConfigError(f"MulT needs at least two sequence modalities (T, d); got {dict(input_shapes)}")
        if self.extra and fusion != "gmu":
            raise ConfigError(f"non-sequence modalities {self.extra} need mult.fusion: gmu")
        self.modalities = list(input_shapes)
        self.input_shapes = {m: tuple(s) for m, s in input_shapes.items()}
        self.fusion_kind = fusion
        kw = dict(attn_dropout=attn_dropout, relu_dropout=relu_dropout, res_dropout=res_dropout, embed_dropout=embed_dropout, causal=causal,
                  fast_dropout=fast_dropout)
        self.proj = nn.ModuleDict({m: nn.Conv1d(int(input_shapes[m][-1]), d, 1, bias=False) for m in self.sequence})
        self.cross = nn.ModuleDict(
            {f"{t}<-{s}": CrossmodalTransformer(d, heads, layers, **kw) for t in self.sequence for s in self.sequence if s != t}
        )
        mem_d = d * (len(self.sequence) - 1)
        self.memory = nn.ModuleDict({t: CrossmodalTransformer(mem_d, heads, max(layers, 3), cross=False, **kw) for t in self.sequence})
        self.mem_d = mem_d
        if fusion == "concat":
            width = mem_d * len(self.sequence)
            self.fc1, self.fc2 = nn.Linear(width, width), nn.Linear(width, width)
            self.gmu = None
        else:
            dims = {m: mem_d for m in self.sequence} | {m: int(input_shapes[m][0]) for m in self.extra}
            self.gmu = GMUFusion({m: dims[m] for m in self.modalities}, out_dim=gmu_dim)
            width = gmu_dim
        self.out_dropout = dropout_layer(out_dropout, fast_dropout)
        self.out = nn.Linear(width, out_dim)
        self.width = width

    @property
    def fused_dim(self) -> int:
        return self.width

    @property
    def feature_dims(self) -> dict[str, int]:
        return {m: self.mem_d for m in self.sequence}

    def forward(self, inputs: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> ModelOutput:
        mask = check_modalities("MulT", self.modalities, inputs, mask, self.input_shapes, parameter_dtype(self))
        inputs = {m: zero_absent(inputs[m], mask[m]) for m in self.modalities}
        inputs = {m: (x.unsqueeze(1) if m in self.lifted else x) for m, x in inputs.items()}
        x = {}
        for m in self.sequence:
            x[m] = self.proj[m](inputs[m].transpose(1, 2)).transpose(1, 2)
        h = {}
        for t in self.sequence:
            z = torch.cat([self.cross[f"{t}<-{s}"](x[t], x[s]) for s in self.sequence if s != t], dim=-1)
            h[t] = self.memory[t](z)[:, -1]
        if self.gmu is None:
            hs = torch.cat([h[t] * mask[t].to(h[t].dtype)[:, None] for t in self.sequence], dim=-1)
            z = hs + self.fc2(self.out_dropout(F.relu(self.fc1(hs))))
            gates = None
        else:
            fo = self.gmu({**h, **{m: inputs[m] for m in self.extra}}, mask)
            z, gates = fo.fused, fo.gates
        return ModelOutput(self.out(z), z, h, MulTInternals(gates))
