"""A circuit breaker per replica: stop sending to a replica that keeps failing.

closed --(N consecutive failures)--> open --(cooldown elapsed)--> half-open
half-open admits one trial request: success closes the breaker, failure reopens it.
Time is passed in (monotonic seconds), so the state machine is a pure function of its
inputs and is tested without sleeping.
"""

from __future__ import annotations

from enum import IntEnum


class BreakerState(IntEnum):
    """The value is what `demigod_upstream_breaker_state` exports."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    def __init__(self, failures_to_open: int, open_seconds: float) -> None:
        if failures_to_open < 1:
            raise ValueError("failures_to_open must be at least 1")
        self.failures_to_open = failures_to_open
        self.open_seconds = open_seconds
        self.consecutive_failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    def state(self, now: float) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if now - self._opened_at >= self.open_seconds:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allows(self, now: float) -> bool:
        """Whether a request may be sent now (without claiming the half-open trial)."""
        state = self.state(now)
        return state is BreakerState.CLOSED or (
            state is BreakerState.HALF_OPEN and not self._trial_in_flight
        )

    def acquire(self, now: float) -> bool:
        """Claim the right to send one request; in half-open, only the first caller wins."""
        if not self.allows(now):
            return False
        if self.state(now) is BreakerState.HALF_OPEN:
            self._trial_in_flight = True
        return True

    def record_success(self) -> None:
        self.consecutive_failures = 0
        self._opened_at = None
        self._trial_in_flight = False

    def record_failure(self, now: float) -> None:
        self.consecutive_failures += 1
        half_open_trial = self._trial_in_flight
        self._trial_in_flight = False
        if half_open_trial or self.consecutive_failures >= self.failures_to_open:
            self._opened_at = now

    def release(self) -> None:
        """A claimed request ended without a verdict (client went away): free the trial."""
        self._trial_in_flight = False
