"""Run directories: an OS lock against two writers, a writability check before
any work, and atomic checkpoint files.

* :class:`RunLock` takes ``fcntl.flock`` on ``RUN_DIR/.lock`` (the holder's PID
  written inside). The OS releases it when the process exits, crash or
  ``kill -9`` included, so a stale lock never blocks a rerun; a second process
  gets a :class:`~mmrefine.core.errors.RunError` naming the holder's PID.
* :class:`AtomicCheckpoint` is Lightning's ``ModelCheckpoint`` writing each file
  to a temporary name and renaming it into place (``os.replace``), so a kill
  during a save leaves the previous checkpoint intact, never a truncated one.
"""

from __future__ import annotations

import fcntl
import os
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
