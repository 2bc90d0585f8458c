"""Pure logic of replica choice and circuit breaking (gateway.balancer, gateway.breaker)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from demigod.gateway.balancer import Replica, choose
from demigod.gateway.breaker import BreakerState, CircuitBreaker


def replicas(count: int) -> list[Replica]:
    return [Replica(f"http://10.0.0.{i}:8080", CircuitBreaker(3, 5.0)) for i in range(count)]


loads = st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=8)


@given(loads)
def test_without_a_session_the_least_loaded_available_replica_wins(outstanding: list[int]) -> None:
    pool = replicas(len(outstanding))
    for replica, load in zip(pool, outstanding, strict=True):
        replica.outstanding = load
    chosen = choose(pool, now=0.0)
    assert chosen is not None
    assert chosen.outstanding == min(outstanding)


@given(loads, st.text(min_size=1, max_size=20))
def test_a_session_stays_on_its_replica_whatever_the_load(
    outstanding: list[int], session: str
) -> None:
    pool = replicas(len(outstanding))
    first = choose(pool, 0.0, session)
    for replica, load in zip(pool, outstanding, strict=True):
        replica.outstanding = load
    assert choose(pool, 0.0, session) is first


@given(st.integers(min_value=2, max_value=8), st.text(min_size=1, max_size=20), st.data())
def test_losing_another_replica_does_not_move_a_session(
    count: int, session: str, data: st.DataObject
) -> None:
    pool = replicas(count)
    home = choose(pool, 0.0, session)
    other = data.draw(st.sampled_from([r for r in pool if r is not home]))
    other.healthy = False
    assert choose(pool, 0.0, session) is home
    home.healthy = False  # its own replica gone: the session moves, never to a dead one
    moved = choose(pool, 0.0, session)
    assert moved is not home and moved is not other


def test_sessions_spread_over_replicas() -> None:
    pool = replicas(3)
    homes = {choose(pool, 0.0, f"session-{i}") for i in range(300)}
    assert homes == set(pool)


def test_excluded_unhealthy_and_open_replicas_are_never_chosen() -> None:
    pool = replicas(3)
    pool[0].healthy = False
    for _ in range(3):
        pool[1].breaker.record_failure(now=0.0)
    assert choose(pool, 1.0) is pool[2]
    assert choose(pool, 1.0, exclude=[pool[2]]) is None


@given(st.integers(min_value=1, max_value=10), st.integers(min_value=0, max_value=30))
def test_breaker_opens_after_exactly_n_consecutive_failures(threshold: int, failures: int) -> None:
    breaker = CircuitBreaker(threshold, open_seconds=5.0)
    for _ in range(failures):
        breaker.record_failure(now=0.0)
    assert (breaker.state(0.0) is BreakerState.OPEN) == (failures >= threshold)
    assert breaker.allows(0.0) == (failures < threshold)


@given(st.lists(st.booleans(), max_size=40))
def test_a_success_always_closes_and_resets(outcomes: list[bool]) -> None:
    breaker = CircuitBreaker(3, open_seconds=5.0)
    for ok in outcomes:
        if ok:
            breaker.record_success()
        else:
            breaker.record_failure(now=0.0)
    breaker.record_success()
    assert breaker.state(0.0) is BreakerState.CLOSED
    assert breaker.consecutive_failures == 0


def test_half_open_admits_one_trial_then_closes_or_reopens() -> None:
    breaker = CircuitBreaker(2, open_seconds=5.0)
    breaker.record_failure(0.0)
    breaker.record_failure(0.0)
    assert not breaker.acquire(4.9)
    assert breaker.state(5.0) is BreakerState.HALF_OPEN
    assert breaker.acquire(5.0)
    assert not breaker.acquire(5.0)  # one trial at a time
    breaker.record_failure(5.5)  # the trial failed: open again for a full cooldown
    assert breaker.state(10.0) is BreakerState.OPEN
    assert breaker.acquire(10.5)
    breaker.record_success()
    assert breaker.state(10.5) is BreakerState.CLOSED
    assert breaker.acquire(10.5) and breaker.acquire(10.5)


def test_a_released_trial_lets_the_next_request_try() -> None:
    breaker = CircuitBreaker(1, open_seconds=1.0)
    breaker.record_failure(0.0)
    assert breaker.acquire(1.0)
    breaker.release()
    assert breaker.acquire(1.0)
