"""Freed memory kept for reuse: large tensors stop faulting pages in every step, and every fit turns it on."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from mmrefine.training import allocator, engine
from tests.conftest import tiny_config

glibc = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")

# 20 allocations of a 64 MB tensor (above glibc's largest dynamic mmap threshold, 32 MiB),
# each written and freed, after 10 that settle the heap (the first few extend it: a freed block
# is a little short of an aligned request until it joins its neighbours); prints the minor
# page faults the 20 took
FAULTS = """
import resource, sys, torch
from mmrefine.training.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
for _ in range(10):
    torch.empty(16 << 20).fill_(1.0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    torch.empty(16 << 20).fill_(1.0)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != allocator.ENV}
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, env=env, check=True)
    return int(out.stdout.split()[-1])


@glibc
def test_kept_memory_is_reused_instead_of_faulted_in_again() -> None:
    default, kept = _faults("default"), _faults("keep")
    assert default > 20 * (64 << 20) // 4096 // 2  # about one fault per 4 KiB page, every time
    assert kept < default // 20


@glibc
def test_the_environment_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(allocator.ENV, "0")
    assert allocator.keep_freed_memory() is False
    monkeypatch.setenv(allocator.ENV, "1")
    assert allocator.keep_freed_memory() is True


def test_off_glibc_it_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator.platform, "system", lambda: "Darwin")
    allocator._glibc_mallopt.cache_clear()
    try:
        assert allocator.keep_freed_memory() is False
    finally:
        allocator._glibc_mallopt.cache_clear()


@pytest.mark.parametrize("limit", [0, -1, 1 << 31])
def test_a_limit_mallopt_cannot_take_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        allocator.keep_freed_memory(limit)


def test_every_fit_keeps_freed_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(engine, "keep_freed_memory", lambda: calls.append(1) or True)
    engine.prepare(tiny_config(tmp_path))
    assert calls == [1]
