"""Where a sweep's runs execute: local processes, or a Ray cluster.

Both executors offer the same three operations to :func:`~mmrefine.experiments.sweep.run_sweep`
(``submit``, ``wait`` for at least one to finish, ``result``); the sweep process
alone appends the finished runs' records to ``runs.jsonl``, so a sweep is
resumable in the same way whichever executor ran it.

* ``local`` (:class:`ProcessExecutor`): ``jobs`` spawned processes on this machine,
  the CPU threads divided between them (``cpu_count // jobs`` each). A worker whose
  parent dies exits at once, so a killed sweep leaves no run holding its lock.
* ``ray`` (:class:`RayExecutor`): every run is a Ray task asking for ``cpus_per_run``
  CPUs (its torch thread count), on a local Ray instance started for the sweep, or
  on an existing cluster (``address``: ``auto`` or ``HOST:PORT``; machines join it
  with ``ray start --address HOST:PORT``). Runs write their run directories under
  the sweep's output folder, so on several machines that folder (and the data root)
  must be on a file system every machine sees. Ray is an optional extra:
  ``pip install -e '.[ray]'``.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Iterable

from mmrefine.core.errors import ConfigError


def _worker_init(threads: int, parent: int) -> None:
    """Thread budget of a local sweep worker, Lightning as quiet as in the parent (no device
    banners or tips per run), and a watchdog that ends it when its parent is gone."""
    import torch

    from mmrefine.logging_setup import quiet_lightning

    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    quiet_lightning()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


class ProcessExecutor:
    """``jobs`` spawned worker processes on this machine."""

    def __init__(self, jobs: int) -> None:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        threads = max(1, (os.cpu_count() or 1) // jobs)
        self.pool = ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                                        initargs=(threads, os.getpid()))

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.pool.submit(fn, *args)

    def wait(self, handles: Iterable[Any]) -> list[Any]:
        from concurrent.futures import FIRST_COMPLETED, wait

        done, _ = wait(list(handles), return_when=FIRST_COMPLETED)
        return list(done)

    def result(self, handle: Any) -> Any:
        return handle.result()

    def close(self, pending: Iterable[Any]) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)  # cancels every run not yet started


def _threaded(fn: Callable[..., Any], threads: int, *args: Any) -> Any:
    """Run ``fn`` with ``threads`` torch threads (inside a Ray task)."""
    import torch

    torch.set_num_threads(threads)
    return fn(*args)


class RayExecutor:
    """Runs as Ray tasks of ``cpus_per_run`` CPUs each (see module docstring)."""

    def __init__(self, address: str | None = None, cpus_per_run: int = 1) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ConfigError("--executor ray needs Ray: pip install -e '.[ray]'") from exc
        if cpus_per_run < 1:
            raise ConfigError(f"--cpus-per-run must be >= 1, got {cpus_per_run}")
        self.ray = ray
        self.started = not ray.is_initialized()
        if self.started:
            # a local instance unless an address is given; each task sets its own torch threads
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        self.cpus_per_run = cpus_per_run
        self.task = ray.remote(_threaded).options(num_cpus=cpus_per_run, max_retries=0)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.task.remote(fn, self.cpus_per_run, *args)

    def wait(self, handles: Iterable[Any]) -> list[Any]:
        done, _ = self.ray.wait(list(handles), num_returns=1)
        return list(done)

    def result(self, handle: Any) -> Any:
        return self.ray.get(handle)

    def close(self, pending: Iterable[Any]) -> None:
        for ref in pending:
            self.ray.cancel(ref, force=True)
        if self.started:
            self.ray.shutdown()


EXECUTORS: dict[str, Callable[[int, str | None, int], ProcessExecutor | RayExecutor]] = {
    "local": lambda jobs, address, cpus_per_run: ProcessExecutor(jobs),
    "ray": lambda jobs, address, cpus_per_run: RayExecutor(address, cpus_per_run),
}


def make_executor(kind: str, jobs: int, address: str | None = None, cpus_per_run: int = 1) -> ProcessExecutor | RayExecutor:
    if kind not in EXECUTORS:
        raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)}, got '{kind}'")
    return EXECUTORS[kind](jobs, address, cpus_per_run)
