"""Quiet Lightning's informational chatter for command-line runs."""

import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
import warnings
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Callable, Iterator

LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning")


def _lightning_loggers_to_warning() -> None:
    for name in LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs ``action`` once, right after module ``name`` is first executed, then leaves no
    trace: the finder removes itself and the module keeps its own loader."""

    def __init__(self, name: str, action: Callable[[], None]) -> None:
        self.name, self.action = name, action

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenLoader(spec.loader, self.action)
        return spec


class _ThenLoader(importlib.abc.Loader):
    def __init__(self, loader: Any, action: Callable[[], None]) -> None:
        self.loader, self.action = loader, action

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        try:
            self.loader.exec_module(module)
        finally:
            module.__loader__ = self.loader
            if module.__spec__ is not None:
                module.__spec__.loader = self.loader
        self.action()


def quiet_lightning() -> None:
    """Lightning's loggers to WARNING (no device banners or tips) and its routine warnings off,
    for command-line runs.

    Lightning sets its loggers to INFO when it is imported, so the levels are set now if it is
    loaded and otherwise right after its import: a process that never trains (the scheduler of
    a sweep or of the demo, ``mmrefine report`` on a sweep) never pays Lightning's import (about 5 s)."""
    if "lightning.pytorch" in sys.modules:
        _lightning_loggers_to_warning()
    elif not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport("lightning.pytorch", _lightning_loggers_to_warning))
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

    names = (*LIGHTNING_LOGGERS, "lightning_fabric", "transformers", "sentence_transformers")
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
