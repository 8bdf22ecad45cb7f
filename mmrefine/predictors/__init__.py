"""One-call predictors over user data (DataFrames in, predictions out)."""

from mmrefine.predictors.table import TablePredictor

__all__ = ["TablePredictor"]
