"""The HPA arithmetic against its formula, with hypothesis where a property holds."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from demigod.scaling.hpa import Behavior, MetricValue, Recommendation, decide, proposal

replicas = st.integers(min_value=1, max_value=50)
values = st.floats(min_value=0, max_value=1e4, allow_nan=False)
targets = st.floats(min_value=0.01, max_value=1e4, allow_nan=False)
metric_lists = st.lists(st.tuples(values, targets), min_size=1, max_size=4)
NO_WINDOWS = {"scale_up_window": 0.0, "scale_down_window": 0.0}


def _metrics(pairs: list[tuple[float, float]]) -> list[MetricValue]:
    return [MetricValue(f"m{i}", value, target) for i, (value, target) in enumerate(pairs)]


def _formula(current: int, value: float, target: float) -> int:
    ratio = value / target
    return current if abs(ratio - 1) <= 0.1 else math.ceil(current * ratio)


@given(replicas, metric_lists)
def test_without_windows_it_is_the_formula_maxed_over_metrics_then_bounded(
    current: int, pairs: list[tuple[float, float]]
) -> None:
    behavior = Behavior(min_replicas=1, max_replicas=1000, **NO_WINDOWS)
    expected = max(_formula(current, v, t) for v, t in pairs)
    decision = decide(current, _metrics(pairs), behavior, now=0.0)
    assert decision.proposed == expected
    assert decision.replicas == min(max(expected, 1), 1000)


@given(replicas, targets, st.floats(min_value=0.9, max_value=1.1))
def test_within_tolerance_nothing_changes(current: int, target: float, share: float) -> None:
    value = target * share
    if abs(value / target - 1) > 0.1:  # float rounding at the edge
        return
    assert proposal(current, [MetricValue("q", value, target)]) == (current, "q")


@given(replicas, metric_lists, st.integers(1, 20), st.integers(0, 30))
def test_always_within_min_and_max(
    current: int, pairs: list[tuple[float, float]], low: int, extra: int
) -> None:
    behavior = Behavior(min_replicas=low, max_replicas=low + extra)
    decision = decide(current, _metrics(pairs), behavior, now=100.0)
    assert low <= decision.replicas <= low + extra


@given(replicas, st.floats(0, 1e3), st.floats(0, 1e3), targets)
def test_more_load_never_means_fewer_replicas(
    current: int, a: float, b: float, target: float
) -> None:
    low, high = sorted((a, b))
    behavior = Behavior(max_replicas=10_000, **NO_WINDOWS)
    quieter = decide(current, [MetricValue("q", low, target)], behavior, 0.0).replicas
    busier = decide(current, [MetricValue("q", high, target)], behavior, 0.0).replicas
    # Tolerance keeps `current` near the target, so compare outside the dead band only.
    if abs(low / target - 1) > 0.1 and abs(high / target - 1) > 0.1:
        assert quieter <= busier


@given(
    st.lists(st.integers(1, 40), min_size=1, max_size=30),
    st.integers(1, 40),
    st.floats(1, 600),
)
def test_scale_down_never_goes_below_any_recommendation_in_the_window(
    past: list[int], current: int, window: float
) -> None:
    now = 1000.0
    history = tuple(Recommendation(now - i * window / len(past) / 2, r) for i, r in enumerate(past))
    behavior = Behavior(max_replicas=100, scale_down_window=window)
    idle = [MetricValue("q", 0.0, 1.0)]  # proposes 0: as far down as allowed
    decision = decide(current, idle, behavior, now, history)
    assert decision.replicas == max(1, min(current, max(past)))


def test_scale_up_is_immediate_and_scale_down_waits_for_the_window() -> None:
    behavior = Behavior(min_replicas=1, max_replicas=8, scale_down_window=60)
    busy = [MetricValue("queue_depth", 12.0, 4.0)]  # 3x the target per replica
    idle = [MetricValue("queue_depth", 0.0, 4.0)]
    up = decide(1, busy, behavior, now=0.0)
    assert up.replicas == 3
    held = decide(3, idle, behavior, now=30.0, history=up.history)
    assert held.replicas == 3, held.reason  # the busy recommendation is inside the window
    down = decide(3, idle, behavior, now=61.0, history=held.history)
    assert down.replicas == 1, down.reason
    assert "stabilised" in held.reason


def test_the_largest_metric_wins() -> None:
    metrics = [MetricValue("queue_depth", 2.0, 4.0), MetricValue("memory", 900.0, 300.0)]
    decision = decide(2, metrics, Behavior(max_replicas=10, **NO_WINDOWS), 0.0)
    assert (decision.replicas, decision.reason) == (6, "memory: proposes 6")


def test_history_keeps_only_what_the_windows_need() -> None:
    behavior = Behavior(scale_up_window=10, scale_down_window=20)
    history = (Recommendation(0.0, 5), Recommendation(15.0, 4))
    decision = decide(4, [MetricValue("q", 1.0, 1.0)], behavior, 30.0, history)
    assert [r.time for r in decision.history] == [15.0, 30.0]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (lambda: MetricValue("q", 1.0, 0.0), "target"),
        (lambda: MetricValue("q", -1.0, 1.0), "value"),
        (lambda: Behavior(min_replicas=3, max_replicas=2), "min_replicas"),
        (lambda: decide(0, [], Behavior(), 0.0), "current"),
    ],
)
def test_bad_input_is_refused(bad: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bad()  # type: ignore[operator]
