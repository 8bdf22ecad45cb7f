"""The ground floor: contracts, errors, registries, masks and shared layers.

Imports nothing else of mmrefine; every other package may import it.
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
from mmrefine.core.layers import mlp, sinusoidal_positions
from mmrefine.core.mask import check_modalities, full_mask, zero_absent
from mmrefine.core.output import ModelOutput
from mmrefine.core.protocols import (
    HasAuxiliaryLosses,
    HasGates,
    HasInferenceModel,
    HasInputShape,
    HasSlots,
    HasStepFeatures,
    HasWeights,
    MultimodalModel,
    check_model,
    inference_model,
    parameter_dtype,
)
from mmrefine.core.registry import Registry, build_checked

__all__ = [
    "BatchError", "CheckpointMismatchError", "ConfigError", "ContractError", "DataError", "HasAuxiliaryLosses",
    "HasGates", "HasInferenceModel", "HasInputShape", "HasSlots", "HasStepFeatures", "HasWeights", "MMRefineError", "ModelOutput",
    "MultimodalModel", "Registry", "RunError", "build_checked", "check_model", "check_modalities", "full_mask",
    "inference_model", "mlp", "parameter_dtype", "sinusoidal_positions", "zero_absent",
]
