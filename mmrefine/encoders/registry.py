"""Registry of unimodal encoders. Every encoder takes ``input_shape`` (per-sample
shape, supplied from the data) and exposes ``out_dim``."""

from mmrefine.core.registry import Registry

ENCODERS: Registry = Registry("encoder")
