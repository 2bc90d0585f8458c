"""How many of a model's replicas may stop at once, in rolling updates and in voluntary
disruptions (drains), so that at least (100 - max_unavailable_percent) % keep serving.

Kubernetes rounds percentages differently in the two places, and both matter:
- a Deployment's rolling update rounds maxUnavailable DOWN and maxSurge UP (and forces
  maxUnavailable to 1 when both come out 0), so `maxUnavailable: 20%` keeps >= 80 %;
- a PodDisruptionBudget rounds maxUnavailable UP: `maxUnavailable: 20%` of 3 replicas lets
  1 go (67 % left), of 6 lets 2 go. Its `minAvailable` also rounds up, so
  `minAvailable: 80%` is what keeps >= 80 % for every replica count.
The functions below reproduce Kubernetes' arithmetic (intstr.GetScaledValueFromIntOrPercent,
deployment util ResolveFenceposts, the disruption controller) so tests can check the
rendered numbers against it for any replica count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def scaled_percent(percent: int, replicas: int, *, round_up: bool) -> int:
    """`percent`% of `replicas` as Kubernetes scales an IntOrString percentage."""
    exact = percent * replicas / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def rollout_fenceposts(
    replicas: int, surge_percent: int, unavailable_percent: int
) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) in pods for a rolling update of `replicas`."""
    surge = scaled_percent(surge_percent, replicas, round_up=True)
    unavailable = scaled_percent(unavailable_percent, replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # Kubernetes' rule: a rollout must be able to make progress
    return surge, unavailable


def pdb_disruptions_allowed(replicas: int, healthy: int, min_available_percent: int) -> int:
    """Evictions a PDB with `minAvailable: N%` allows with `healthy` of `replicas` ready."""
    desired = scaled_percent(min_available_percent, replicas, round_up=True)
    return max(0, healthy - desired)


@dataclass(frozen=True)
class DisruptionBudget:
    """At most `max_unavailable_percent` of a model's replicas down, by rollout or drain."""

    max_unavailable_percent: int
    max_surge_percent: int

    @property
    def min_available_percent(self) -> int:
        return 100 - self.max_unavailable_percent

    def rolling_update(self) -> dict[str, object]:
        """A Deployment's `strategy`."""
        return {
            "type": "RollingUpdate",
            "rollingUpdate": {
                "maxUnavailable": f"{self.max_unavailable_percent}%",
                "maxSurge": f"{self.max_surge_percent}%",
            },
        }

    def pdb_spec(self, selector: dict[str, str]) -> dict[str, object]:
        """A PodDisruptionBudget's `spec`: minAvailable, because it rounds up (see above).
        Pods that never became ready may be evicted, so a broken rollout cannot block
        node drains."""
        return {
            "minAvailable": f"{self.min_available_percent}%",
            "selector": {"matchLabels": dict(selector)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        }

    def serving_during_rollout(self, replicas: int) -> int:
        """Replicas that keep serving at the worst moment of a rolling update."""
        _, unavailable = rollout_fenceposts(
            replicas, self.max_surge_percent, self.max_unavailable_percent
        )
        return replicas - min(unavailable, replicas)
