"""Quiet Lightning's informational chatter for command-line runs."""

import logging
import sys
import warnings
from contextlib import contextmanager
from typing import Iterator


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


NOISY_MODULES = r"(lightning|lightning_fabric|pytorch_lightning|lightning_utilities|torch|torchmetrics|transformers|sentence_transformers|sklearn)(\..*)?"


@contextmanager
def quiet(verbosity: int = 1) -> Iterator[None]:
    """Silence the libraries mmrefine trains with, for the duration (a one-call predictor's fit).

    Lightning's loggers (device banners, tips, "`Trainer.fit` stopped") go to WARNING, or
    ERROR at ``verbosity`` 0; warnings raised inside Lightning, torch, torchmetrics,
    transformers and scikit-learn (deprecations, "does not have many workers", ...) are
    dropped; mmrefine's own INFO lines, one per stage, go to stderr as ``mmrefine: ...``
    at ``verbosity`` >= 1 (a handler is added for the duration when the ``mmrefine``
    logger has none), and nothing is printed at ``verbosity`` 0. Levels, handlers and
    warning filters are restored afterwards."""
    import lightning.pytorch  # noqa: F401  (sets its loggers' levels on import: override them after)

    names = ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning", "lightning_fabric", "transformers",
             "sentence_transformers")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    own = logging.getLogger("mmrefine")
    own_level, own_disabled = own.level, own.disabled
    handler: logging.Handler | None = None
    for lg in loggers:
        lg.setLevel(logging.ERROR if verbosity <= 0 else logging.WARNING)
    if verbosity <= 0:
        own.disabled = True
    elif not own.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("mmrefine: %(message)s"))
        own.addHandler(handler)
        own.setLevel(logging.INFO)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=NOISY_MODULES)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=FutureWarning)
            if verbosity <= 0:
                warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        own.setLevel(own_level)
        own.disabled = own_disabled
        if handler is not None:
            own.removeHandler(handler)
