"""The ground floor: contracts, errors, registries, masks and shared layers.

Imports nothing else of mmrefine; every other package may import it. The errors and the
registry load with the package; the names that need torch (layers, masks, the model
contract) load on first use, so ``import mmrefine`` and ``mmrefine --help`` stay fast.
"""

from __future__ import annotations

from mmrefine.core.errors import (
    BatchError,
    CheckpointMismatchError,
    ConfigError,
    ContractError,
    DataError,
    MMRefineError,
    RunError,
)
from mmrefine.core.lazy import lazy_names
from mmrefine.core.registry import Registry, build_checked

_LAZY = {
    "mlp": "layers", "sinusoidal_positions": "layers",
    "check_modalities": "mask", "full_mask": "mask", "zero_absent": "mask",
    "ModelOutput": "output",
    **{name: "protocols" for name in ("HasAuxiliaryLosses", "HasGates", "HasInferenceModel", "HasInputShape", "HasSlots",
                                      "HasStepFeatures", "HasWeights", "MultimodalModel", "check_model", "inference_model",
                                      "parameter_dtype")},
}

__getattr__ = lazy_names(__name__, _LAZY)


__all__ = [
    "BatchError", "CheckpointMismatchError", "ConfigError", "ContractError", "DataError", "HasAuxiliaryLosses",
    "HasGates", "HasInferenceModel", "HasInputShape", "HasSlots", "HasStepFeatures", "HasWeights", "MMRefineError", "ModelOutput",
    "MultimodalModel", "Registry", "RunError", "build_checked", "check_model", "check_modalities", "full_mask",
    "inference_model", "mlp", "parameter_dtype", "sinusoidal_positions", "zero_absent",
]
