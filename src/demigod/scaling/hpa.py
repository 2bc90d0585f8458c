"""The Kubernetes Horizontal Pod Autoscaler's replica arithmetic, as pure functions.

Per metric, `desired = ceil(current * value / target)`, unless `value / target` is within
`tolerance` (0.1) of 1, where the metric proposes no change. Several metrics: the largest
proposal wins. Stabilisation (HPA's `behavior`): the recommendations of the last
`scale_up_window` seconds bound a scale-up by their minimum, those of the last
`scale_down_window` seconds bound a scale-down by their maximum, so replicas fall only
after every recommendation in the window allowed it. Then min/max. Same order as
kube-controller-manager's `stabilizeRecommendationWithBehaviors` and its min/max clamp
(pkg/controller/podautoscaler/horizontal.go); scaling-rate policies are not modelled.

No clock and no I/O: callers pass `now` and keep the returned history.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_TOLERANCE = 0.1  # kube-controller-manager's --horizontal-pod-autoscaler-tolerance


@dataclass(frozen=True)
class MetricValue:
    """One metric's current per-replica average and its per-replica target."""

    name: str
    value: float
    target: float

    def __post_init__(self) -> None:
        if not self.target > 0:
            raise ValueError(f"metric {self.name}: target must be > 0, not {self.target}")
        if self.value < 0 or math.isnan(self.value):
            raise ValueError(f"metric {self.name}: value must be >= 0, not {self.value}")


@dataclass(frozen=True)
class Behavior:
    """Bounds and stabilisation windows (Kubernetes defaults: up 0 s, down 300 s)."""

    min_replicas: int = 1
    max_replicas: int = 10
    scale_up_window: float = 0.0
    scale_down_window: float = 300.0
    tolerance: float = DEFAULT_TOLERANCE

    def __post_init__(self) -> None:
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ValueError("need 1 <= min_replicas <= max_replicas")
        if self.scale_up_window < 0 or self.scale_down_window < 0 or self.tolerance < 0:
            raise ValueError("windows and tolerance must be >= 0")


@dataclass(frozen=True)
class Recommendation:
    """An unstabilised recommendation, kept for the windows of later decisions."""

    time: float
    replicas: int


@dataclass(frozen=True)
class Decision:
    replicas: int  # what to run now
    proposed: int  # the metrics' proposal before stabilisation and bounds
    reason: str
    history: tuple[Recommendation, ...]  # pass to the next call


def metric_proposal(current: int, metric: MetricValue, tolerance: float = DEFAULT_TOLERANCE) -> int:
    """ceil(current * value / target), or `current` when the ratio is within tolerance."""
    ratio = metric.value / metric.target
    if abs(ratio - 1.0) <= tolerance:
        return current
    return math.ceil(current * ratio)


def proposal(
    current: int, metrics: Sequence[MetricValue], tolerance: float = DEFAULT_TOLERANCE
) -> tuple[int, str]:
    """The largest of the metrics' proposals and the metric that made it (none: keep)."""
    if not metrics:
        return current, "no metrics"
    best = max(metrics, key=lambda metric: metric_proposal(current, metric, tolerance))
    return metric_proposal(current, best, tolerance), best.name


def decide(
    current: int,
    metrics: Sequence[MetricValue],
    behavior: Behavior,
    now: float,
    history: Sequence[Recommendation] = (),
) -> Decision:
    """How many replicas to run, from `current` replicas, the metrics and the previous
    recommendations (`history`, from the last Decision). Raises ValueError for current < 1."""
    if current < 1:
        raise ValueError("current replicas must be >= 1 (0 means scaling is disabled)")
    proposed, metric = proposal(current, metrics, behavior.tolerance)
    up_cutoff = now - behavior.scale_up_window
    down_cutoff = now - behavior.scale_down_window
    up_bound = down_bound = proposed
    for past in history:
        if past.time > up_cutoff:
            up_bound = min(up_bound, past.replicas)
        if past.time > down_cutoff:
            down_bound = max(down_bound, past.replicas)
    replicas = min(max(current, up_bound), down_bound)
    reason = f"{metric}: proposes {proposed}"
    if replicas != proposed:
        reason += f", stabilised to {replicas}"
    bounded = min(max(replicas, behavior.min_replicas), behavior.max_replicas)
    if bounded != replicas:
        reason += f", bounded to {bounded}"
    keep = max(behavior.scale_up_window, behavior.scale_down_window)
    kept = tuple(past for past in history if past.time > now - keep)
    return Decision(bounded, proposed, reason, (*kept, Recommendation(now, proposed)))
