"""Run directories: an OS lock against two writers, a writability check before
any work, and atomic checkpoint files.

* :class:`RunLock` takes ``fcntl.flock`` on ``RUN_DIR/.lock`` (the holder's PID
  written inside). The OS releases it when the process exits, crash or
  ``kill -9`` included, so a stale lock never blocks a rerun; a second process
  gets a :class:`~mmrefine.core.errors.RunError` naming the holder's PID.
* :class:`AtomicCheckpoint` is Lightning's ``ModelCheckpoint`` writing each file
  to a temporary name and renaming it into place (``os.replace``), so a kill
  during a save leaves the previous checkpoint intact, never a truncated one.
* :class:`LastCheckpoint` is ``last.ckpt``, where a resumed run restarts, written at the
  end of an epoch only when it is due (``trainer.last_checkpoint_every_s``).
"""

from __future__ import annotations

import fcntl
import os
import time
import uuid
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint

from mmrefine.core.errors import RunError


class RunLock:
    """Exclusive lock on a run directory for the duration of a ``with`` block."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / ".lock"
        self._fd: int | None = None

    def __enter__(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunError(f"run directory {self.path.parent} is in use by another fit (process {holder}); "
                           "wait for it to end or choose another run_dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def check_writable(folder: str | Path) -> None:
    """Create ``folder`` and write a probe file in it, or raise a RunError naming it."""
    folder = Path(folder)
    probe = folder / f".write-test-{uuid.uuid4().hex}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise RunError(f"cannot write to {folder}: {exc.strerror or exc}") from exc


class AtomicCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose files appear whole or not at all (see module docstring)."""

    def _save_checkpoint(self, trainer: Any, filepath: str) -> None:
        tmp = f"{filepath}.tmp-{os.getpid()}"
        super()._save_checkpoint(trainer, tmp)
        if trainer.is_global_zero:
            os.replace(tmp, filepath)
        self._last_checkpoint_saved = filepath


class LastCheckpoint(AtomicCheckpoint):
    """``last.ckpt``: the point a resumed run restarts from, rewritten at the end of an epoch when

    * ``every_s`` seconds have passed since its previous write (``every_s`` 0: every epoch), or
    * ``best`` (the best-epoch checkpoint) was written at this step, so that no best file is
      ever newer than it (a resumed run then rewrites no best file under a second name), or
    * the epoch is the last one (``max_epochs`` or ``max_steps`` reached, or early stopping).

    A run resumed from it ends where an uninterrupted run ends (it replays the epochs since);
    a crash costs at most ``every_s`` seconds and one epoch of work. An epoch of a tiny model
    takes a fraction of a second, while writing its checkpoint (weights and AdamW moments)
    costs about as much as a tenth of that epoch: written every epoch, checkpoints were 8% of
    a demo run (docs/performance.md)."""

    def __init__(self, dirpath: str | Path, best: ModelCheckpoint, every_s: float = 0.0) -> None:
        super().__init__(dirpath=dirpath, filename="last", monitor=None, save_top_k=1, enable_version_counter=False)
        self.best, self.every_s = best, every_s
        self._written_at = time.monotonic()

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        super().on_train_start(trainer, pl_module)
        self._written_at = time.monotonic()

    def _due(self, trainer: Any) -> bool:
        if self.every_s <= 0 or self.best._last_global_step_saved == trainer.global_step:
            return True
        last_epoch = trainer.max_epochs is not None and trainer.max_epochs > 0 and trainer.current_epoch + 1 >= trainer.max_epochs
        last_step = trainer.max_steps is not None and trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps
        late = time.monotonic() - self._written_at >= self.every_s
        # a save is collective under DDP: every process follows process 0's clock
        return bool(trainer.should_stop or last_epoch or last_step or trainer.strategy.broadcast(late))

    def _save_topk_checkpoint(self, trainer: Any, monitor_candidates: dict[str, Any]) -> None:
        if self._due(trainer):  # called at the end of an epoch only (no step or time triggers are set)
            super()._save_topk_checkpoint(trainer, monitor_candidates)

    def _save_checkpoint(self, trainer: Any, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)
        self._written_at = time.monotonic()
