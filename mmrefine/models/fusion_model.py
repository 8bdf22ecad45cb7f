"""``FusionModel(encoders, fusion, head)``: ``y = P(A(G_1(x_1), ..., G_M(x_M)))``."""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Sequence

from torch import Tensor, nn

from mmrefine.data.batch import full_mask, zero_absent
from mmrefine.encoders.mlp import mlp
from mmrefine.errors import BatchError
from mmrefine.fusion.base import FusionModule


def checked_mask(
    owner: str, modalities: Sequence[str], inputs: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None
) -> dict[str, Tensor]:
    """Raise :class:`BatchError` unless ``inputs`` has exactly ``modalities``;
    return ``mask`` as a dict (all present when ``None``)."""
    unknown = [k for k in inputs if k not in modalities]
    missing = [m for m in modalities if m not in inputs]
    if unknown or missing:
        raise BatchError(f"{owner} expects modalities {list(modalities)}; unknown {unknown}, missing {missing}")
    return dict(mask) if mask is not None else full_mask(inputs)


class ModelOutput(NamedTuple):
    """What every mmrefine model returns.

    ``features`` are the per-modality representations a Refiner reconstructs
    (the encoder outputs ``F_m`` here); ``fusion`` is the fusion module's own
    NamedTuple (GMU gates, attention weights, ...); ``steps`` holds the fused
    vector of every unrolled step of a Progressive Fusion model."""

    logits: Tensor
    fused: Tensor
    features: dict[str, Tensor]
    fusion: Any = None
    steps: tuple[Tensor, ...] | None = None


class MLPHead(nn.Module):
    """``P(z) = MLP(z)``: optional hidden ReLU layers, then a linear output."""

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = (), dropout: float = 0.0) -> None:
        super().__init__()
        self.net = mlp([in_dim, *hidden, out_dim], dropout)
        self.out_dim = out_dim

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class FusionModel(nn.Module):
    """Encoders per modality, a fusion module and a prediction head.

    ``forward(inputs, mask)`` zeroes absent inputs, encodes every modality,
    fuses with the mask and predicts. ``fused_dim`` and ``feature_dims`` tell
    wrappers (Refiner, ProgressiveFusion) the widths of ``z`` and ``F_m``.
    """

    def __init__(self, encoders: Mapping[str, nn.Module], fusion: FusionModule, head: nn.Module) -> None:
        super().__init__()
        if list(encoders) != list(fusion.modalities):
            raise BatchError(f"encoders {list(encoders)} and fusion modalities {fusion.modalities} differ")
        self.encoders = nn.ModuleDict(dict(encoders))
        self.fusion = fusion
        self.head = head

    @property
    def modalities(self) -> list[str]:
        return list(self.encoders)

    @property
    def fused_dim(self) -> int:
        return int(self.fusion.out_dim)

    @property
    def feature_dims(self) -> dict[str, int]:
        return dict(self.fusion.in_dims)

    def check_inputs(self, inputs: Mapping[str, Tensor]) -> None:
        checked_mask("model", self.modalities, inputs, None)

    def encode(self, inputs: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
        self.check_inputs(inputs)
        out = {}
        for m, enc in self.encoders.items():
            x = inputs[m]
            if mask is not None:
                x = zero_absent(x, mask[m])
            out[m] = enc(x)
        return out

    def forward(self, inputs: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> ModelOutput:
        mask = checked_mask("model", self.modalities, inputs, mask)
        features = self.encode(inputs, mask)
        fo = self.fusion(features, mask)
        return ModelOutput(self.head(fo.fused), fo.fused, features, fo)
