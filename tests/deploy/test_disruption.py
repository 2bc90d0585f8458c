"""The replica arithmetic, with Kubernetes' own rounding: rollouts keep >= (100 -
max_unavailable) % serving at every replica count; the rendered PodDisruptionBudget never
blocks a drain, takes one pod at a time, and keeps that floor at every replica count
where any eviction can."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from demigod.deploy.disruption import (
    DisruptionBudget,
    pdb_disruptions_allowed,
    pdb_spec,
    rollout_fenceposts,
    scaled_percent,
)

replicas = st.integers(1, 1000)
budgets = st.builds(
    DisruptionBudget,
    max_unavailable_percent=st.integers(0, 60),
    max_surge_percent=st.integers(1, 100),
)
SPEC = pdb_spec({"app.kubernetes.io/name": "demigod-worker"})


@given(replicas, budgets)
def test_a_rolling_update_keeps_the_floor_serving(n: int, budget: DisruptionBudget) -> None:
    serving = budget.serving_during_rollout(n)
    assert serving * 100 >= budget.min_available_percent * n
    surge, _ = rollout_fenceposts(n, budget.max_surge_percent, budget.max_unavailable_percent)
    assert surge >= 1  # the rollout can always progress by surging


@given(replicas)
def test_a_drain_is_never_blocked_when_every_replica_is_ready(n: int) -> None:
    """A PDB allowing no eviction would hold a node drain forever, at any replica count,
    a single replica included."""
    assert pdb_disruptions_allowed(SPEC, n, n) >= 1


@given(replicas, st.data())
def test_a_drain_takes_one_pod_at_a_time(n: int, data: st.DataObject) -> None:
    healthy = data.draw(st.integers(0, n))
    allowed = pdb_disruptions_allowed(SPEC, n, healthy)
    assert 0 <= allowed <= min(1, healthy)
    # Once one is down (evicted, not ready yet), the next waits for it.
    assert allowed == (1 if healthy == n else 0)


@given(replicas, budgets, st.data())
def test_a_drain_keeps_the_floor_wherever_the_replicas_allow_it(
    n: int, budget: DisruptionBudget, data: st.DataObject
) -> None:
    """If any single eviction keeps the floor, every eviction the PDB allows does; if none
    can, the drain still proceeds, one pod at a time."""
    healthy = data.draw(st.integers(0, n))
    allowed = pdb_disruptions_allowed(SPEC, n, healthy)
    one_keeps_the_floor = (n - 1) * 100 >= budget.min_available_percent * n
    floor = budget.floor_replicas
    assert one_keeps_the_floor == (floor is not None and n >= floor)
    if allowed and one_keeps_the_floor:
        assert (healthy - allowed) * 100 >= budget.min_available_percent * n
    if not one_keeps_the_floor and healthy == n:
        assert allowed == 1


def test_the_old_percentage_budgets_block_or_break_the_floor() -> None:
    """Why the PDB is `maxUnavailable: 1`: Kubernetes rounds a PDB's percentages up, so
    `minAvailable: 80%` allows no eviction at 4 or fewer replicas (prod's 3 gateways,
    dev's single workers: drains blocked), and `maxUnavailable: 20%` lets 2 of 6 go."""
    assert SPEC == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "demigod-worker"}},
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }
    min_80 = {"minAvailable": "80%"}
    assert [pdb_disruptions_allowed(min_80, n, n) for n in (1, 3, 4, 5, 10)] == [0, 0, 0, 1, 2]
    for n, lost in ((3, 1), (4, 1), (6, 2)):
        assert scaled_percent(20, n, round_up=True) == lost
        assert pdb_disruptions_allowed({"maxUnavailable": "20%"}, n, n) == lost
        assert (n - lost) / n < 0.8
    assert [pdb_disruptions_allowed(SPEC, n, n) for n in (1, 3, 4, 5, 10)] == [1, 1, 1, 1, 1]
    budget = DisruptionBudget(max_unavailable_percent=20, max_surge_percent=25)
    assert budget.floor_replicas == 5  # 4 of 5 = 80 %; 3 of 4 = 75 %
    assert DisruptionBudget(0, 25).floor_replicas is None
    assert budget.rolling_update()["rollingUpdate"] == {"maxUnavailable": "20%", "maxSurge": "25%"}
    assert [budget.serving_during_rollout(n) for n in (1, 4, 5, 10)] == [1, 4, 4, 8]


def test_a_malformed_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="percentage"):
        pdb_disruptions_allowed({"maxUnavailable": "20"}, 5, 5)
