"""mmrefine: multimodal fusion that refines fused representations.

Modules take ``dict[str, Tensor]`` keyed by modality and return NamedTuples, so
internals (GMU gates, attention weights, per-modality features) stay visible.
The contract every model meets is in :mod:`mmrefine.core`; the layers of the
package are drawn in ``docs/architecture.md``.
"""

from mmrefine.core.errors import (
    BatchError,
    CheckpointMismatchError,
    ConfigError,
    ContractError,
    DataError,
    MMRefineError,
    RunError,
)
from mmrefine.core.lazy import lazy_names as _lazy_names

__version__ = "0.2.0"


# mmrefine.TablePredictor is imported on first use (it pulls in torch and Lightning)
__getattr__ = _lazy_names(__name__, {"TablePredictor": "predictors"})


__all__ = [
    "TablePredictor", "BatchError", "CheckpointMismatchError", "ConfigError", "ContractError", "DataError", "MMRefineError", "RunError",
    "__version__",
]
