"""Encoders for sequences ``(B, T, D)``: 1-D conv, GRU, transformer.

Pooling over time: ``"last"`` takes the final step, ``"mean"`` averages all steps.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from mmrefine.core.errors import ConfigError
from mmrefine.core.layers import sinusoidal_positions
from mmrefine.encoders.registry import ENCODERS

POOLINGS = ("last", "mean")


def _pool(h: Tensor, pooling: str) -> Tensor:
    return h[:, -1] if pooling == "last" else h.mean(1)


def _check(input_shape: Sequence[int | None], pooling: str, name: str) -> int:
    if len(input_shape) != 2 or input_shape[1] is None:
        raise ConfigError(f"{name}: expected sequences shaped (T, D), got {tuple(input_shape)}")
    if pooling not in POOLINGS:
        raise ConfigError(f"{name}: pooling must be one of {POOLINGS}, got '{pooling}'")
    return int(input_shape[1])


@ENCODERS.register("conv1d")
class Conv1dEncoder(nn.Module):
    """``h = ReLU(Conv1d(...))`` stacked over time (same padding), then pooled.

    Args:
        input_shape: per-sample input shape ``(T, d)`` (set by the builder from the data).
        channels: output channels of each convolution; the last is ``out_dim``.
        kernels: kernel size of each convolution (same padding).
        pooling: ``mean`` or ``last`` over time.
        dropout: dropout after each activation.
    """

    def __init__(
        self,
        input_shape: Sequence[int | None],
        channels: Sequence[int] = (64, 64),
        kernels: Sequence[int] = (3, 3),
        pooling: str = "mean",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.input_shape: tuple[int | None, ...] = tuple(input_shape)
        d = _check(input_shape, pooling, "conv1d")
        if len(channels) != len(kernels):
            raise ConfigError(f"conv1d: {len(channels)} channels for {len(kernels)} kernels")
        layers: list[nn.Module] = []
        for c, k in zip(channels, kernels):
            layers += [nn.Conv1d(d, c, k, padding=k // 2), nn.ReLU(), nn.Dropout(dropout)]
            d = c
        self.net = nn.Sequential(*layers)
        self.pooling = pooling
        self.out_dim = d

    def forward(self, x: Tensor) -> Tensor:
        return _pool(self.net(x.transpose(1, 2)).transpose(1, 2), self.pooling)


@ENCODERS.register("gru")
class GRUEncoder(nn.Module):
    """``h_t = GRU(x_t, h_{t-1})``; output the pooled hidden states (both
    directions concatenated when bidirectional). ``"last"`` takes each
    direction's final state: step T for the forward pass, step 1 for the
    backward pass (``h[:, -1]`` would hold a backward state that saw one step).

    Args:
        input_shape: per-sample input shape (set by the builder from the data).
        hidden: hidden width per direction.
        layers: stacked GRU layers.
        bidirectional: run both directions and concatenate them.
        pooling: ``last`` (each direction's final state) or ``mean`` over time.
        dropout: dropout between GRU layers.
    """

    def __init__(
        self,
        input_shape: Sequence[int | None],
        hidden: int = 64,
        layers: int = 1,
        bidirectional: bool = False,
        pooling: str = "last",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.input_shape: tuple[int | None, ...] = tuple(input_shape)
        d = _check(input_shape, pooling, "gru")
        self.gru = nn.GRU(d, hidden, layers, batch_first=True, bidirectional=bidirectional, dropout=dropout if layers > 1 else 0.0)
        self.pooling = pooling
        self.out_dim = hidden * (2 if bidirectional else 1)

    def forward(self, x: Tensor) -> Tensor:
        h, h_n = self.gru(x)
        if self.pooling == "last":
            dirs = 2 if self.gru.bidirectional else 1
            return h_n[-dirs:].transpose(0, 1).reshape(x.shape[0], -1)
        return h.mean(1)


@ENCODERS.register("transformer")
class TransformerSequenceEncoder(nn.Module):
    """``h = TransformerEncoder(W x + PE)`` (pre-LayerNorm), then pooled.

    Args:
        input_shape: per-sample input shape (set by the builder from the data).
        d_model: token width (``out_dim``).
        heads: attention heads.
        layers: encoder layers.
        ff_mult: feed-forward width as a multiple of ``d_model``.
        dropout: dropout in attention and feed-forward blocks.
        pooling: ``mean`` or ``last`` over time.
    """

    def __init__(
        self,
        input_shape: Sequence[int | None],
        d_model: int = 64,
        heads: int = 4,
        layers: int = 2,
        ff_mult: int = 4,
        dropout: float = 0.1,
        pooling: str = "mean",
    ) -> None:
        super().__init__()
        self.input_shape: tuple[int | None, ...] = tuple(input_shape)
        d = _check(input_shape, pooling, "transformer")
        if d_model % heads:
            raise ConfigError(f"transformer: d_model {d_model} is not divisible by heads {heads}")
        self.proj = nn.Linear(d, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, ff_mult * d_model, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.pooling = pooling
        self.out_dim = d_model

    def forward(self, x: Tensor) -> Tensor:
        h = self.proj(x) + sinusoidal_positions(x.shape[1], self.out_dim).to(x)
        return _pool(self.norm(self.encoder(h)), self.pooling)
