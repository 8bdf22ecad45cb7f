"""Keep freed memory in the process (glibc malloc), so that large tensors stop page-faulting every step.

glibc serves an allocation above ``M_MMAP_THRESHOLD`` (128 KiB, raised dynamically up to
32 MiB) with a fresh ``mmap`` and unmaps it when freed, and it gives the heap's top back
to the system above ``M_TRIM_THRESHOLD``. A training step allocates the same large
tensors every step (attention matrices of ``B * heads * L^2`` floats, conv feature maps, their gradients), so
those above the threshold are mapped, faulted in page by page (the kernel zero-fills every
4 KiB page) and unmapped again: 20 allocations of a 64 MB tensor take 327,700 page faults
by default and none with freed memory kept (``tests/training/test_allocator.py``). On 2 cores
the forward and backward of the early-fusion transformer's dropped attention (128 x 8 x 97 x 97
matrices) took 109.6 ms by default and 57.8 ms with memory kept
(``benchmarks/attention_core.py``, ``docs/performance.md``).

:func:`keep_freed_memory` sets both thresholds to ``limit`` with ``mallopt``: blocks up
to that size come from the heap and go back to it, and the next step reuses them. The
arithmetic does not change (results are the same bit for bit); resident memory can stay
at the process's peak instead of shrinking between steps. :func:`~mmrefine.training.engine.prepare`
calls it, so every fit, sweep run and predictor does; ``MMREFINE_KEEP_FREED_MEMORY=0``
turns it off. Elsewhere than glibc (macOS, Windows, musl) it does nothing and says so
by returning ``False``.

    mallopt(M_MMAP_THRESHOLD, limit); mallopt(M_TRIM_THRESHOLD, limit)
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
from collections.abc import Callable

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
ENV = "MMREFINE_KEEP_FREED_MEMORY"
DEFAULT_LIMIT = 1 << 30


def keep_freed_memory(limit: int = DEFAULT_LIMIT) -> bool:
    """Set glibc's mmap and trim thresholds to ``limit`` bytes (module docstring). Returns
    whether they were set: ``False`` off glibc or with ``MMREFINE_KEEP_FREED_MEMORY=0``."""
    if not 0 < limit < 1 << 31:
        raise ValueError(f"limit must be in (0, 2^31) bytes (mallopt takes an int), got {limit}")
    if os.environ.get(ENV, "1").strip().lower() in {"0", "false", "no", "off"}:
        return False
    mallopt = _glibc_mallopt()
    return mallopt is not None and bool(mallopt(M_MMAP_THRESHOLD, limit)) and bool(mallopt(M_TRIM_THRESHOLD, limit))


@functools.cache
def _glibc_mallopt() -> Callable[[int, int], int] | None:
    """glibc's ``mallopt``, looked up once per process (``libc_ver`` reads the interpreter's binary); ``None`` elsewhere."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6").mallopt
    except OSError:
        return None
