"""How many of a model's replicas may stop at once, in rolling updates and in voluntary
disruptions (drains), and why the two are bounded differently.

Rolling updates keep at least (100 - max_unavailable_percent) % serving: a Deployment's
rolling update rounds maxUnavailable DOWN and maxSurge UP (and forces maxUnavailable to 1
when both come out 0), so `maxUnavailable: 20%` keeps >= 80 % at every replica count, and
a rollout can always progress by surging.

Drains are bounded by a PodDisruptionBudget of `maxUnavailable: 1`, for the gateway and
for every worker: one pod of a workload at a time, never none.
- A PDB that allows 0 disruptions blocks node maintenance forever (a drain retries the
  eviction until someone deletes the PDB). `minAvailable: 80%` (which rounds up) allows
  n - ceil(0.8 n) evictions: 0 for 4 or fewer replicas, so it blocked every drain of a
  worker at dev's and stage's minimum of 1, and of prod's 3 gateway replicas.
- One eviction keeps the floor exactly when (n - 1) / n >= floor, i.e. from
  `floor_replicas` replicas on (5 for a 20 % budget). Below that no eviction can keep the
  floor, so `maxUnavailable: 1` keeps the floor wherever the replica count allows it and
  otherwise lets the drain proceed one pod at a time (a single replica is down until it
  is rescheduled and ready: docs/kubernetes.md says what that costs).
- Its price: with 10 or more replicas a percentage floor would let two or more go at
  once; one at a time makes such drains slower, never less available.
- `unhealthyPodEvictionPolicy: AlwaysAllow`: pods that never became ready may be evicted,
  so a broken rollout cannot block a drain either.
The functions below reproduce Kubernetes' arithmetic (intstr.GetScaledValueFromIntOrPercent,
deployment util ResolveFenceposts, the disruption controller) so tests can check the
rendered numbers against it for any replica count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

MAX_UNAVAILABLE_IN_DRAINS = 1


def scaled_percent(percent: int, replicas: int, *, round_up: bool) -> int:
    """`percent`% of `replicas` as Kubernetes scales an IntOrString percentage."""
    exact = percent * replicas / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def _scaled(value: object, replicas: int) -> int:
    """An IntOrString of a PDB, as the disruption controller scales it (percentages up).
    Raises ValueError for anything else."""
    if isinstance(value, str) and value.endswith("%"):
        return scaled_percent(int(value[:-1]), replicas, round_up=True)
    if isinstance(value, int):
        return value
    raise ValueError(f"not an int or a percentage: {value!r}")


def rollout_fenceposts(
    replicas: int, surge_percent: int, unavailable_percent: int
) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) in pods for a rolling update of `replicas`."""
    surge = scaled_percent(surge_percent, replicas, round_up=True)
    unavailable = scaled_percent(unavailable_percent, replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # Kubernetes' rule: a rollout must be able to make progress
    return surge, unavailable


def pdb_disruptions_allowed(spec: Mapping[str, object], replicas: int, healthy: int) -> int:
    """Evictions a PDB with `spec` allows with `healthy` of a scalable workload's
    `replicas` ready (the disruption controller's disruptionsAllowed). Raises ValueError
    for a malformed bound."""
    if "maxUnavailable" in spec:
        desired = max(0, replicas - _scaled(spec["maxUnavailable"], replicas))
    else:
        desired = _scaled(spec["minAvailable"], replicas)
    return max(0, healthy - desired)


def pdb_spec(selector: Mapping[str, str]) -> dict[str, object]:
    """A PodDisruptionBudget's `spec`: one pod at a time (see above)."""
    return {
        "maxUnavailable": MAX_UNAVAILABLE_IN_DRAINS,
        "selector": {"matchLabels": dict(selector)},
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }


@dataclass(frozen=True)
class DisruptionBudget:
    """At most `max_unavailable_percent` of a model's replicas down in a rollout, and in
    a drain wherever one eviction keeps that floor."""

    max_unavailable_percent: int
    max_surge_percent: int

    @property
    def min_available_percent(self) -> int:
        return 100 - self.max_unavailable_percent

    @property
    def floor_replicas(self) -> int | None:
        """The fewest replicas at which one eviction keeps min_available_percent serving
        (None: no count does, the budget allows no loss)."""
        if self.max_unavailable_percent == 0:
            return None
        return math.ceil(100 / self.max_unavailable_percent)

    def rolling_update(self) -> dict[str, object]:
        """A Deployment's `strategy`."""
        return {
            "type": "RollingUpdate",
            "rollingUpdate": {
                "maxUnavailable": f"{self.max_unavailable_percent}%",
                "maxSurge": f"{self.max_surge_percent}%",
            },
        }

    def serving_during_rollout(self, replicas: int) -> int:
        """Replicas that keep serving at the worst moment of a rolling update."""
        _, unavailable = rollout_fenceposts(
            replicas, self.max_surge_percent, self.max_unavailable_percent
        )
        return replicas - min(unavailable, replicas)
