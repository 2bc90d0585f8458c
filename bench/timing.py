"""Timing helpers shared by the per-request latency benchmarks (run from bench/ as scripts)."""

from __future__ import annotations

import time
from collections.abc import Callable

REPEATS = 5  # every prompt is timed this many times


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank `q` quantile (0..1) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def time_calls(
    prompts: list[str], work: Callable[[str], object]
) -> tuple[list[float], list[float]]:
    """(wall-clock, CPU) milliseconds of `work(prompt)`, each prompt REPEATS times."""
    wall, cpu = [], []
    for _ in range(REPEATS):
        for prompt in prompts:
            started, started_cpu = time.perf_counter(), time.thread_time()
            work(prompt)
            cpu.append((time.thread_time() - started_cpu) * 1000)
            wall.append((time.perf_counter() - started) * 1000)
    return wall, cpu


def measure(prompts: list[str], work: Callable[[str], object]) -> list[float]:
    """Wall-clock milliseconds per call."""
    return time_calls(prompts, work)[0]
