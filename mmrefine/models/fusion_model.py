"""``FusionModel(encoders, fusion, head)``: ``y = P(A(G_1(x_1), ..., G_M(x_M)))``."""

from __future__ import annotations

from typing import Mapping, Sequence

from torch import Tensor, nn

from mmrefine.core.errors import ConfigError
from mmrefine.core.layers import mlp
from mmrefine.core.mask import check_modalities, zero_absent
from mmrefine.core.output import ModelOutput
from mmrefine.core.protocols import HasInputShape, parameter_dtype
from mmrefine.fusion.base import FusionModule
from mmrefine.fusion.concat import ConcatFusion

__all__ = ["FusionModel", "MLPHead", "ModelOutput"]


class MLPHead(nn.Module):
    """``P(z) = MLP(z)``: optional hidden ReLU layers, then a linear output.

    Args:
        in_dim: width of ``z``.
        out_dim: number of outputs (from the task).
        hidden: widths of hidden ReLU layers.
        dropout: dropout after each hidden layer.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = (), dropout: float = 0.0) -> None:
        super().__init__()
        self.net = mlp([in_dim, *hidden, out_dim], dropout)
        self.out_dim = out_dim

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class FusionModel(nn.Module):
    """Encoders per modality, a fusion module and a prediction head.

    ``forward(inputs, mask)`` checks the inputs once, zeroes absent inputs (by
    selection), encodes every modality, fuses with the mask and predicts.
    ``fused_dim`` and ``feature_dims`` tell wrappers (Refiner,
    ProgressiveFusion) the widths of ``z`` and ``F_m``.

    Args:
        encoders: ``{modality: encoder}``; each encoder has an ``out_dim``.
        fusion: a :class:`~mmrefine.fusion.FusionModule` over the same modalities, in the same order.
        head: maps ``z`` to the outputs.
    """

    def __init__(self, encoders: Mapping[str, nn.Module], fusion: FusionModule, head: nn.Module) -> None:
        super().__init__()
        if list(encoders) != list(fusion.modalities):
            raise ConfigError(f"encoders {list(encoders)} and fusion modalities {fusion.modalities} differ")
        self.encoders = nn.ModuleDict(dict(encoders))
        self._input_shapes = {m: enc.input_shape for m, enc in self.encoders.items() if isinstance(enc, HasInputShape)}
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

    def encode(self, inputs: Mapping[str, Tensor], mask: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{m: G_m(x_m)}`` with absent samples' inputs zeroed; ``inputs`` and
        ``mask`` must already have passed :func:`~mmrefine.core.check_modalities`."""
        return {m: enc(zero_absent(inputs[m], mask[m])) for m, enc in self.encoders.items()}

    @property
    def fused_slots(self) -> dict[str, tuple[int, int]] | None:
        """Each modality's slot in ``z`` when the fusion is a plain concatenation, else None."""
        return self.fusion.slots if isinstance(self.fusion, ConcatFusion) else None

    @property
    def input_shapes(self) -> dict[str, tuple[int | None, ...]]:
        """Per-sample input shapes of the encoders that declare one."""
        return self._input_shapes

    def check(self, inputs: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None) -> dict[str, Tensor]:
        """The boundary check (see :func:`~mmrefine.core.check_modalities`); returns the mask."""
        return check_modalities("model", self.modalities, inputs, mask, self.input_shapes, parameter_dtype(self))

    def forward(self, inputs: Mapping[str, Tensor], mask: Mapping[str, Tensor] | None = None) -> ModelOutput:
        mask = self.check(inputs, mask)
        features = self.encode(inputs, mask)
        fo = self.fusion(features, mask)
        return ModelOutput(self.head(fo.fused), fo.fused, features, fo)
