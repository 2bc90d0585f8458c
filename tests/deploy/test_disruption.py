"""The replica arithmetic: rollouts and drains keep >= (100 - max_unavailable) % serving,
for every replica count, with Kubernetes' own rounding."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from demigod.deploy.disruption import (
    DisruptionBudget,
    pdb_disruptions_allowed,
    rollout_fenceposts,
    scaled_percent,
)

replicas = st.integers(1, 1000)
budgets = st.builds(
    DisruptionBudget,
    max_unavailable_percent=st.integers(0, 60),
    max_surge_percent=st.integers(1, 100),
)


@given(replicas, budgets)
def test_a_rolling_update_keeps_the_floor_serving(n: int, budget: DisruptionBudget) -> None:
    serving = budget.serving_during_rollout(n)
    assert serving * 100 >= budget.min_available_percent * n
    surge, _ = rollout_fenceposts(n, budget.max_surge_percent, budget.max_unavailable_percent)
    assert surge >= 1  # the rollout can always progress by surging


@given(replicas, budgets, st.data())
def test_a_drain_keeps_the_floor_serving(
    n: int, budget: DisruptionBudget, data: st.DataObject
) -> None:
    healthy = data.draw(st.integers(0, n))
    allowed = pdb_disruptions_allowed(n, healthy, budget.min_available_percent)
    assert 0 <= allowed <= healthy
    if allowed:
        assert (healthy - allowed) * 100 >= budget.min_available_percent * n


def test_the_pdb_rendered_is_min_available_because_max_unavailable_rounds_up() -> None:
    budget = DisruptionBudget(max_unavailable_percent=20, max_surge_percent=25)
    spec = budget.pdb_spec({"app.kubernetes.io/name": "demigod-worker"})
    assert spec["minAvailable"] == "80%" and "maxUnavailable" not in spec
    # What a `maxUnavailable: 20%` PDB would let go (Kubernetes rounds it up):
    for n, lost in ((3, 1), (4, 1), (6, 2)):
        assert scaled_percent(20, n, round_up=True) == lost
        assert (n - lost) / n < 0.8
    # minAvailable 80 %: 5 replicas drain one at a time, 4 or fewer none.
    assert [pdb_disruptions_allowed(n, n, 80) for n in (1, 4, 5, 6, 10)] == [0, 0, 1, 1, 2]
    assert budget.rolling_update()["rollingUpdate"] == {"maxUnavailable": "20%", "maxSurge": "25%"}
    assert [budget.serving_during_rollout(n) for n in (1, 4, 5, 10)] == [1, 4, 4, 8]
