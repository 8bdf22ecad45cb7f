"""LeNet-style 2-D convolutional encoder (AV-MNIST image and audio encoders).

Layer i: ``Conv2d(c_{i-1}, c_i, k_i, padding=k_i // 2) -> ReLU -> MaxPool(pool)``;
with ``batch_norm`` the block is ``Conv2d(..., bias=False) -> BatchNorm2d(c_i) -> ReLU ->
MaxPool(pool)``, MultiBench's LeNet. (The modules apply the max-pool before the ReLU:
the same values and gradients, less work.) The final feature map is flattened (or averaged over
its positions with ``global_pool``) and optionally projected to ``out_dim``.
Progressive Fusion's (Shankar et al.) AV-MNIST encoders are ``channels=[b, 2b, 4b, 8b]``, ``kernels=[5,3,3,3]``
(image, 28x28) and six layers with ``kernels=[5,3,3,3,3,3]`` (112x112 spectrogram):
``channels`` may be given as ``width`` (b) and ``layers`` for doubling widths.

``channels_last`` keeps the convolutions' weights and activations in NHWC memory
layout: the same function (up to floating-point summation order), 1.6-1.7x faster
per training step for the papers' AV-MNIST LeNets on 2 CPU cores, but *slower*
(0.74x at batch 40) with ``batch_norm``, whose NHWC kernel is slow on few channels
(``benchmarks/conv_speed.py``, ``docs/performance.md``).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

from mmrefine.core.errors import ConfigError
from mmrefine.encoders.registry import ENCODERS


@ENCODERS.register("lenet")
class LeNetEncoder(nn.Module):
    """See module docstring. Accepts ``(B, H, W)``, ``(B, C, H, W)`` or flat
    ``(B, H*W)`` inputs (then ``image_shape`` gives ``(H, W)``).

    Args:
        input_shape: per-sample input shape (set by the builder from the data).
        kernels: kernel size of each conv block.
        channels: output channels per block (None: ``width * 2^i``).
        width: channels of the first block when ``channels`` is None.
        pool: max-pooling factor after each block.
        image_shape: ``(H, W)`` of flat inputs.
        out_dim: a final linear layer to this width (None: the flattened conv output).
        global_pool: average over the remaining spatial positions instead of flattening.
        channels_last: NHWC memory layout for the convolutions (faster on CPU; see module docstring).
        batch_norm: a BatchNorm2d after each (bias-free) convolution, as in MultiBench's LeNet.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        kernels: Sequence[int] = (5, 3, 3, 3),
        channels: Sequence[int] | None = None,
        width: int = 6,
        pool: int = 2,
        image_shape: Sequence[int] | None = None,
        out_dim: int | None = None,
        global_pool: bool = False,
        channels_last: bool = False,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.channels_last = channels_last
        self.input_shape: tuple[int | None, ...] = tuple(input_shape)
        if channels is None:
            channels = [width * 2**i for i in range(len(kernels))]
        if len(channels) != len(kernels):
            raise ConfigError(f"lenet: {len(channels)} channels for {len(kernels)} kernels")
        shape = tuple(image_shape) if image_shape is not None else tuple(input_shape)
        if len(shape) == 1:
            side = math.isqrt(shape[0])
            if side * side != shape[0]:
                raise ConfigError(f"lenet: cannot infer an image shape from flat input {shape}; set image_shape")
            shape = (side, side)
        if len(shape) == 2:
            shape = (1, *shape)
        if len(shape) != 3:
            raise ConfigError(f"lenet: expected (H, W) or (C, H, W) inputs, got {tuple(input_shape)}")
        self.image_shape = shape
        layers: list[nn.Module] = []
        c_in = shape[0]
        for c, k in zip(channels, kernels):
            if batch_norm:
                layers += [nn.Conv2d(c_in, c, k, padding=k // 2, bias=False), nn.BatchNorm2d(c)]
            else:
                layers.append(nn.Conv2d(c_in, c, k, padding=k // 2))
            # max-pool before ReLU: the same function (ReLU is monotone, so it commutes with a max),
            # with the ReLU and its backward on a quarter of the values
            layers += [nn.MaxPool2d(pool), nn.ReLU()]
            c_in = c
        if global_pool:
            layers.append(nn.AdaptiveAvgPool2d(1))
        self.conv = nn.Sequential(*layers)
        try:
            with torch.no_grad():
                flat = self.conv.eval()(torch.zeros(1, *shape)).numel()
            self.conv.train()
        except RuntimeError:
            flat = 0
        if flat == 0:
            raise ConfigError(f"lenet: {len(kernels)} pooling layers shrink a {shape[1:]} input to nothing")
        self.proj = nn.Linear(flat, out_dim) if out_dim is not None else None
        self.out_dim = out_dim if out_dim is not None else flat
        if channels_last:
            self.conv.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        x = x.reshape(x.shape[0], *self.image_shape)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        h = self.conv(x).flatten(1)
        return self.proj(h) if self.proj is not None else h
