"""Quiet Lightning's informational chatter for command-line runs."""

import logging
import warnings


def quiet_lightning() -> None:
    import lightning.pytorch  # noqa: F401  (sets its loggers to INFO on import)

    for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*treespec.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
