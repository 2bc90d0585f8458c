"""The canary decision's properties (hypothesis) and a few worked cases."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from demigod.canary.decision import (
    Margins,
    WindowStats,
    decide,
    next_step,
    regressions,
)

STEPS = (5.0, 25.0, 50.0, 100.0)


@st.composite
def windows(draw: st.DrawFn) -> WindowStats:
    requests = draw(st.integers(0, 500))
    probes = draw(st.integers(0, 10))
    return WindowStats(
        requests=requests,
        errors=draw(st.integers(0, requests)),
        p95_seconds=draw(st.none() | st.floats(0.001, 60)) if requests else None,
        probes=probes,
        probes_passed=draw(st.integers(0, probes)),
    )


margins = st.builds(
    Margins,
    error_rate=st.floats(0, 0.2),
    p95_ratio=st.floats(0, 1),
    p95_slack_seconds=st.floats(0, 0.2),
    probe_pass_drop=st.floats(0, 0.5),
    min_requests=st.integers(1, 50),
)
weights = st.sampled_from((0.0, *STEPS[:-1]))


def worse_beyond_margin(stable: WindowStats, candidate: WindowStats, m: Margins) -> bool:
    """The specification, written independently of `regressions`."""
    if candidate.requests and candidate.errors / candidate.requests > (
        (stable.errors / stable.requests if stable.requests else 0.0) + m.error_rate
    ):
        return True
    if candidate.probes and candidate.probes_passed / candidate.probes < (
        (stable.probes_passed / stable.probes if stable.probes else 1.0) - m.probe_pass_drop
    ):
        return True
    return (
        candidate.p95_seconds is not None
        and stable.p95_seconds is not None
        and min(stable.requests, candidate.requests) >= m.min_requests
        and candidate.p95_seconds > stable.p95_seconds * (1 + m.p95_ratio) + m.p95_slack_seconds
    )


@given(windows(), windows(), margins, weights)
def test_never_advances_when_the_candidate_is_worse_beyond_a_margin(
    stable: WindowStats, candidate: WindowStats, m: Margins, weight: float
) -> None:
    decision = decide(stable, candidate, m, STEPS, weight)
    if worse_beyond_margin(stable, candidate, m):
        assert decision.action == "rollback"
    else:
        assert decision.action != "rollback"


@given(windows(), windows(), margins, weights)
def test_a_rollback_always_goes_to_zero_and_says_why(
    stable: WindowStats, candidate: WindowStats, m: Margins, weight: float
) -> None:
    decision = decide(stable, candidate, m, STEPS, weight)
    if decision.action == "rollback":
        assert decision.weight == 0.0 and decision.reason
    if decision.action == "hold":
        assert decision.weight == weight


@given(st.lists(st.tuples(windows(), windows()), min_size=1, max_size=12), margins)
def test_weights_rise_monotonically_while_healthy_and_complete_at_100(
    rounds: list[tuple[WindowStats, WindowStats]], m: Margins
) -> None:
    weight, seen = STEPS[0], [STEPS[0]]
    for stable, candidate in rounds:
        decision = decide(stable, candidate, m, STEPS, weight)
        if decision.action == "rollback":
            return
        assert decision.weight >= weight
        assert decision.weight in STEPS
        weight = decision.weight
        seen.append(weight)
        if decision.action == "complete":
            assert weight == 100.0
            return
    assert seen == sorted(seen)


@given(margins)
def test_identical_healthy_versions_walk_every_step_to_completion(m: Margins) -> None:
    same = WindowStats(
        requests=m.min_requests, errors=0, p95_seconds=0.2, probes=3, probes_passed=3
    )
    weight, actions = STEPS[0], []
    for _ in STEPS:
        decision = decide(same, same, m, STEPS, weight)
        actions.append(decision.action)
        weight = decision.weight
    assert actions == ["advance", "advance", "complete", "complete"][: len(actions)]
    assert weight == 100.0


@given(windows(), margins, weights)
def test_a_candidate_failing_every_request_is_rolled_back(
    stable: WindowStats, m: Margins, weight: float
) -> None:
    assume(stable.requests == 0 or stable.errors / stable.requests + m.error_rate < 1)
    failing = WindowStats(requests=3, errors=3)
    assert decide(stable, failing, m, STEPS, weight).action == "rollback"


def test_worked_cases() -> None:
    m = Margins(min_requests=10)
    fast = WindowStats(requests=40, p95_seconds=0.1, probes=3, probes_passed=3)
    slow = WindowStats(requests=12, p95_seconds=1.2, probes=3, probes_passed=3)
    assert regressions(fast, slow, m) == ["p95 1.200s > stable 0.100s x 1.25 + 0.05s"]
    few = WindowStats(requests=4, p95_seconds=0.1)
    hold = decide(fast, few, m, STEPS, 5.0)
    assert (hold.action, hold.weight) == ("hold", 5.0)
    assert "candidate answered 4 requests" in hold.reason
    probe = WindowStats(requests=12, p95_seconds=0.1, probes=2, probes_passed=1)
    assert decide(fast, probe, m, STEPS, 25.0).reason == "probe pass rate 50% < stable 100% - 0%"
    assert decide(fast, fast, m, STEPS, 25.0).weight == 50.0
    assert next_step(STEPS, 50.0) == 100.0 and next_step(STEPS, 0.0) == 5.0
