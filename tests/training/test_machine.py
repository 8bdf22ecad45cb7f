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


def test_small_op_cost_is_the_best_timing_over_its_operations(monkeypatch: pytest.MonkeyPatch) -> None:
    times = iter([0.0, 0.4, 1.0, 1.2, 2.0, 2.3])  # timings of 0.4, 0.2 and 0.3 s
    monkeypatch.setattr(machine.time, "perf_counter", lambda: next(times))
    assert machine.small_op_us(ops=100, repeats=3) == pytest.approx(0.2 / 100 * 1e6)


def test_machine_line_names_cores_threads_rate_and_small_op() -> None:
    line = machine.machine_line()
    assert "cores, torch threads" in line and "(1024x1024), small op " in line and line.endswith(" µs")
    assert float(line.split("fp32 matmul ")[1].split()[0]) > 0
    assert float(line.split("small op ")[1].split()[0]) > 0
