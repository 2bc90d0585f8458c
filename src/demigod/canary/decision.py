"""The canary decision, as pure functions: one analysis window's figures per version, the
margins and the current weight in; advance, hold, rollback or complete (and why) out.

Rules, in order:
1. rollback to 0 % when the candidate is worse than stable beyond a margin on any of:
   5xx error rate, p95 latency (judged once both versions answered `min_requests`), or
   deep-probe pass rate. A version without data is compared against a perfect baseline
   (no errors, every probe passing), never skipped in the candidate's favour;
2. hold when either version answered fewer than `min_requests` (nothing to compare yet);
3. otherwise advance to the next step, or complete (100 %, promote) when that step is the
   last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Action = Literal["advance", "hold", "rollback", "complete"]
FULL = 100.0


@dataclass(frozen=True)
class WindowStats:
    """What one version did during one analysis window."""

    requests: int = 0
    errors: int = 0  # answered with a 5xx
    p95_seconds: float | None = None
    probes: int = 0
    probes_passed: int = 0

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def probe_pass_rate(self) -> float | None:
        return self.probes_passed / self.probes if self.probes else None


@dataclass(frozen=True)
class Margins:
    """How much worse than stable the candidate may be and still advance."""

    error_rate: float = 0.01  # absolute: candidate 5xx ratio ≤ stable's + this
    p95_ratio: float = 0.25  # candidate p95 ≤ stable p95 x (1 + this) + p95_slack_seconds
    p95_slack_seconds: float = 0.05  # absorbs histogram-bucket resolution on fast models
    probe_pass_drop: float = 0.0  # absolute: candidate pass rate ≥ stable's - this
    min_requests: int = 20


@dataclass(frozen=True)
class Decision:
    action: Action
    weight: float  # candidate percent after the decision
    reason: str


def next_step(steps: Sequence[float], weight: float) -> float:
    """The first step above `weight`; 100 when none is."""
    return next((step for step in steps if step > weight), FULL)


def regressions(stable: WindowStats, candidate: WindowStats, margins: Margins) -> list[str]:
    """Each way the candidate is worse than stable beyond its margin, in words."""
    found: list[str] = []
    if candidate.error_rate is not None:
        baseline = stable.error_rate or 0.0
        if candidate.error_rate > baseline + margins.error_rate:
            found.append(
                f"error rate {candidate.error_rate:.1%} > stable {baseline:.1%} "
                f"+ {margins.error_rate:.1%}"
            )
    if (
        candidate.p95_seconds is not None
        and stable.p95_seconds is not None
        and min(candidate.requests, stable.requests) >= margins.min_requests
    ):
        limit = stable.p95_seconds * (1 + margins.p95_ratio) + margins.p95_slack_seconds
        if candidate.p95_seconds > limit:
            found.append(
                f"p95 {candidate.p95_seconds:.3f}s > stable {stable.p95_seconds:.3f}s "
                f"x {1 + margins.p95_ratio:g} + {margins.p95_slack_seconds:g}s"
            )
    if candidate.probe_pass_rate is not None:
        baseline = 1.0 if stable.probe_pass_rate is None else stable.probe_pass_rate
        if candidate.probe_pass_rate < baseline - margins.probe_pass_drop:
            found.append(
                f"probe pass rate {candidate.probe_pass_rate:.0%} < stable {baseline:.0%} "
                f"- {margins.probe_pass_drop:.0%}"
            )
    return found


def decide(
    stable: WindowStats,
    candidate: WindowStats,
    margins: Margins,
    steps: Sequence[float],
    weight: float,
) -> Decision:
    """What to do after a window in which the candidate had `weight` percent of traffic."""
    if problems := regressions(stable, candidate, margins):
        return Decision("rollback", 0.0, "; ".join(problems))
    if (fewest := min(stable.requests, candidate.requests)) < margins.min_requests:
        who = "candidate" if candidate.requests == fewest else "stable"
        return Decision(
            "hold",
            weight,
            f"{who} answered {fewest} requests, {margins.min_requests} needed to compare",
        )
    step = next_step(steps, weight)
    healthy = f"healthy at {weight:g}% ({candidate.requests} candidate requests)"
    if step >= FULL:
        return Decision("complete", FULL, f"{healthy}; promoted")
    return Decision("advance", step, f"{healthy}; {weight:g}% -> {step:g}%")
