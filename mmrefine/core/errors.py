"""Exceptions raised for bad input. Each message names the offending item."""


class MMRefineError(Exception):
    """Base class of every error mmrefine raises on purpose."""


class BatchError(MMRefineError, ValueError):
    """A batch does not match its schema: unknown or missing modality, wrong shape
    or dtype, NaN/Inf values, or a malformed mask or label tensor."""


class ConfigError(MMRefineError, ValueError):
    """A configuration is invalid: unknown key, wrong type, unknown component name."""


class DataError(MMRefineError, OSError):
    """Data files are missing, empty, truncated or corrupt."""


class CheckpointMismatchError(MMRefineError, ValueError):
    """A checkpoint does not belong to the architecture it is loaded into."""


class ContractError(MMRefineError, TypeError):
    """An object does not meet the contract it is used under (e.g. a wrapper given
    something that is not a :class:`~mmrefine.core.MultimodalModel`)."""


class RunError(MMRefineError, RuntimeError):
    """A run cannot proceed as asked: its directory holds another run, it was
    interrupted, or a stage it needs has not been done."""
