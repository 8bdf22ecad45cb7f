"""The machine line: the fp32 matmul rate from its formula, 2 n^3 r / t."""

from __future__ import annotations

import itertools

import pytest

from mmrefine.training import machine


def test_matmul_rate_is_two_n_cubed_products_over_the_best_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = itertools.count(step=0.5)  # every timing takes 0.5 s
    monkeypatch.setattr(machine.time, "perf_counter", lambda: next(clock))
    rate, n = machine.matmul_gflops(sizes=(64,), flop_per_timing=2 * 64**3 * 4, repeats=2)
    assert n == 64 and rate == pytest.approx(2 * 64**3 * 4 / 0.5 / 1e9)


def test_machine_line_names_cores_threads_and_rate() -> None:
    line = machine.machine_line()
    assert "cores, torch threads" in line and line.endswith("(1024x1024)")
    assert float(line.split("fp32 matmul ")[1].split()[0]) > 0
