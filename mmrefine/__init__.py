"""mmrefine: multimodal fusion that refines fused representations.

Modules take ``dict[str, Tensor]`` keyed by modality and return NamedTuples, so
internals (GMU gates, attention weights, per-modality features) stay visible.
"""

from mmrefine.errors import BatchError, CheckpointMismatchError, ConfigError, DataError

__version__ = "0.1.0"

__all__ = ["BatchError", "CheckpointMismatchError", "ConfigError", "DataError", "__version__"]
