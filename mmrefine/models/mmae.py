"""Multimodal autoencoder with an attention branch (MMAE; the MAI 2021 multi-task paper on PetFinder).

Two branches over the same inputs ``x_m`` (flattened):

*Multimodal autoencoder*: per-modality encoders ``h_m = E_m(x_m)`` (``in -> hidden -> code``,
ReLU), the concatenated code ``h_mm = [h_1; ...; h_M]`` (absent modalities zero), and
per-modality decoders ``x̂_m = D_m(h_mm)`` (``M·code -> code -> hidden -> in``): every
modality is decoded from the *joint* code. Reconstruction loss (an auxiliary term,
name ``reconstruction``)::

    L_rec = ae_weight * sum_m w_m * mean over present samples of ||x̂_m - x_m||² / d_m

(equal ``w_m`` were best in the paper).

*Attention branch*: per-modality features ``v_m = ReLU(W_m x_m)`` of a shared width d, a
learned vector ``mu``::

    e_m = tanh(v_m · mu),   a = softmax_m(e)  (over present modalities),   v̂_m = a_m v_m

The classifier reads ``h = [v̂_1; ...; v̂_M; h_mm]`` (``fused``). Trained jointly
(``ae_weight > 0``), or autoencoder first (the engine's ``pretrain`` stage runs the
reconstruction alone), then the classifier, with ``detach_code`` keeping the classifier's
gradient out of the autoencoder.
"""

from __future__ import annotations

import math
from typing import Mapping, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from mmrefine.core.errors import ConfigError
from mmrefine.core.layers import mlp
from mmrefine.core.mask import check_modalities, zero_absent
from mmrefine.core.output import ModelOutput
from mmrefine.core.protocols import parameter_dtype
from mmrefine.models.registry import ARCHITECTURES


class MMAEInternals(NamedTuple):
    reconstructions: dict[str, Tensor]  # x̂_m, flattened
    targets: dict[str, Tensor]  # x_m, flattened
    weights: Tensor  # (B, M) attention weights a_m
    code: Tensor  # h_mm


@ARCHITECTURES.register("mmae")
class MMAE(nn.Module):
    """See module docstring.

    Args:
        input_shapes: ``{modality: per-sample shape}`` (set by the builder from the data; inputs are flattened).
        out_dim: number of outputs (set by the builder from the task).
        hidden: autoencoder hidden width (the paper: 512).
        code: code width per modality (the paper: 64).
        d: width of the attention branch's features.
        ae_weight: weight of the reconstruction loss (0: the classifier alone).
        modality_weights: ``w_m`` per modality (default: 1 each).
        detach_code: the classifier reads the code without training the autoencoder.
        dropout: dropout on the attention branch's features and before the output layer.
    """

    def __init__(self, input_shapes: Mapping[str, Sequence[int]], out_dim: int, hidden: int = 512, code: int = 64, d: int = 64,
                 ae_weight: float = 1.0, modality_weights: Mapping[str, float] | None = None, detach_code: bool = False,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.modalities = list(input_shapes)
        self.input_shapes = {m: tuple(s) for m, s in input_shapes.items()}
        self.in_dims = {m: math.prod(s) for m, s in self.input_shapes.items()}
        weights = dict(modality_weights or {})
        unknown = sorted(set(weights) - set(self.modalities))
        if unknown:
            raise ConfigError(f"mmae.modality_weights: unknown modality {unknown}; the modalities are {self.modalities}")
        if ae_weight < 0 or any(w < 0 for w in weights.values()):
            raise ConfigError("mmae: ae_weight and modality_weights must be >= 0")
        self.register_buffer("w", torch.tensor([float(weights.get(m, 1.0)) for m in self.modalities]), persistent=False)
        self.ae_weight, self.detach_code, self.code_dim, self.d = ae_weight, detach_code, code, d
        m_count = len(self.modalities)
        self.encoders = nn.ModuleDict({m: mlp([n, hidden, code], 0.0, final_activation=True) for m, n in self.in_dims.items()})
        self.decoders = nn.ModuleDict({m: mlp([m_count * code, code, hidden, n], 0.0) for m, n in self.in_dims.items()})
        self.branch = nn.ModuleDict({m: nn.Sequential(nn.Linear(n, d), nn.ReLU(), nn.Dropout(dropout)) for m, n in self.in_dims.items()})
        self.mu = nn.Parameter(torch.randn(d) / math.sqrt(d))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(m_count * (d + code), out_dim))

    @property
    def fused_dim(self) -> int:
        return len(self.modalities) * (self.d + self.code_dim)

    @property
    def feature_dims(self) -> dict[str, int]:
        return {m: self.d for m in self.modalities}

    def forward(self, inputs: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> ModelOutput:
        mask = check_modalities("MMAE", self.modalities, inputs, mask, self.input_shapes, parameter_dtype(self))
        x = {m: zero_absent(inputs[m].flatten(1), mask[m]) for m in self.modalities}
        codes = [zero_absent(self.encoders[m](x[m]), mask[m]) for m in self.modalities]
        h_mm = torch.cat(codes, 1)
        recon = {m: self.decoders[m](h_mm) for m in self.modalities}
        v = torch.stack([zero_absent(self.branch[m](x[m]), mask[m]) for m in self.modalities], 1)  # (B, M, d)
        present = torch.stack([mask[m] for m in self.modalities], 1)
        e = torch.tanh(v @ self.mu).masked_fill(~present, float("-inf"))
        a = torch.nan_to_num(torch.softmax(e, 1), nan=0.0)
        v_hat = a[..., None] * v
        fused = torch.cat([v_hat.flatten(1), h_mm.detach() if self.detach_code else h_mm], 1)
        features = {m: v_hat[:, i] for i, m in enumerate(self.modalities)}
        return ModelOutput(self.head(fused), fused, features, MMAEInternals(recon, x, a, h_mm))

    def auxiliary_losses(self, out: ModelOutput, mask: Mapping[str, Tensor] | None = None, labels: Tensor | None = None) -> dict[str, Tensor]:
        """``{"reconstruction": L_rec}`` (see module docstring); absent samples are left out."""
        if self.ae_weight == 0:
            return {}
        internals: MMAEInternals = out.fusion
        total = out.logits.new_zeros(())
        for i, m in enumerate(self.modalities):
            err = (internals.reconstructions[m] - internals.targets[m]).square().mean(1)
            keep = mask[m].to(err.dtype) if mask is not None else torch.ones_like(err)
            total = total + self.w[i] * (err * keep).sum() / keep.sum().clamp_min(1.0)
        return {"reconstruction": self.ae_weight * total}
