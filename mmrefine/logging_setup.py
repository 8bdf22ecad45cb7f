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
    # run directories are managed by mmrefine.training.engine (resume keeps earlier logs)
    warnings.filterwarnings("ignore", message="Experiment logs directory .* exists and is not empty.*")
    warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")


def show_progress_notes() -> None:
    """Print mmrefine's own INFO notes (e.g. "AV-MNIST built in 28.1 s") to stderr."""
    log = logging.getLogger("mmrefine")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("mmrefine: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
