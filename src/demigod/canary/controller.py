"""The canary controller: step a candidate's weight after each healthy analysis window,
roll it back to 0 % when it is worse than stable.

Each window it scrapes the gateway's /metrics at the start and the end (per-version
requests, 5xx answers and the latency histogram, `demigod_version_request_duration_seconds`)
and sends `probes_per_window` deep probes to each version, pinned as `model@version`: the
gateway's deep probe (a short greedy completion of exactly 4 tokens) and the Hemlock
suite's `probe: true` cases (lifecycle.hemlock_suite), each one check.
`decision.decide` turns the figures into the next weight, which is written to the canary
store (the gateway follows it within `refresh_seconds`), evented and logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from demigod.canary.decision import Decision, Margins, WindowStats, decide
from demigod.canary.store import CanaryEvent, CanaryState, CanaryStore, Status
from demigod.config import CanaryConfig
from demigod.evaluation.hemlock import Case, HemlockSuite, run_suite
from demigod.observability.probes import DEEP_PROBE_PROMPT, DEEP_PROBE_TOKENS
from demigod.observability.scrape import Snapshot, histogram_quantile, scrape
from demigod.routing.versions import PIN_SEPARATOR

log = logging.getLogger(__name__)

REQUESTS = "demigod_requests_total"
DURATION_BUCKETS = "demigod_version_request_duration_seconds_bucket"
TERMINAL: dict[str, Status] = {"rollback": "rolled_back", "complete": "promoted"}


class CanaryError(RuntimeError):
    """A rollout that cannot start or go on (unknown model, nothing running)."""


def margins_from(config: CanaryConfig) -> Margins:
    return Margins(
        error_rate=config.max_error_rate_increase,
        p95_ratio=config.max_p95_increase_ratio,
        p95_slack_seconds=config.p95_slack_seconds,
        probe_pass_drop=config.max_probe_pass_drop,
        min_requests=config.min_requests,
    )


def version_window(
    before: Snapshot, after: Snapshot, model: str, version: str
) -> tuple[int, int, float | None]:
    """(requests, 5xx answers, p95 seconds) of `model` at `version` between two scrapes."""

    def counts(snapshot: Snapshot) -> tuple[float, float]:
        total = errors = 0.0
        for labels, value in snapshot.samples.get(REQUESTS, {}).items():
            found = dict(labels)
            if found.get("model") == model and found.get("version") == version:
                total += value
                errors += value if found.get("status", "").startswith("5") else 0.0
        return total, errors

    def buckets(snapshot: Snapshot) -> dict[float, float]:
        found: dict[float, float] = defaultdict(float)
        for labels, value in snapshot.samples.get(DURATION_BUCKETS, {}).items():
            label = dict(labels)
            if label.get("model") == model and label.get("version") == version:
                found[float(label["le"])] += value
        return found

    (total_after, errors_after), (total_before, errors_before) = counts(after), counts(before)
    start = buckets(before)
    interval = {le: count - start.get(le, 0.0) for le, count in buckets(after).items()}
    return (
        round(total_after - total_before),
        round(errors_after - errors_before),
        histogram_quantile(0.95, interval),
    )


def probe_version(
    client: httpx.Client, model: str, version: str, cases: Sequence[Case] = ()
) -> tuple[int, int]:
    """One deep probe of `model` at `version` through the gateway: (checks passed, checks
    run): the short greedy completion, then each Hemlock probe case."""
    passed = int(_generates(client, model, version))
    if cases:
        suite = HemlockSuite(name="canary-probe", cases=list(cases))
        report = asyncio.run(
            run_suite(suite, str(client.base_url), f"{model}{PIN_SEPARATOR}{version}")
        )
        passed += sum(case.passed for case in report.cases)
    return passed, 1 + len(cases)


def _generates(client: httpx.Client, model: str, version: str) -> bool:
    """One deep probe through the gateway, pinned to `version`: a short greedy completion
    that must answer 200 with exactly DEEP_PROBE_TOKENS tokens."""
    body = {
        "model": f"{model}{PIN_SEPARATOR}{version}",
        "prompt": DEEP_PROBE_PROMPT,
        "max_tokens": DEEP_PROBE_TOKENS,
        "temperature": 0,
        "ignore_eos": True,
        "user": "demigod-canary-probe",
    }
    try:
        reply = client.post("/v1/completions", json=body)
        return reply.status_code == 200 and (
            reply.json().get("usage", {}).get("completion_tokens") == DEEP_PROBE_TOKENS
        )
    except (httpx.HTTPError, ValueError):
        return False


@dataclass(frozen=True)
class WindowReport:
    weight: float
    stable: WindowStats
    candidate: WindowStats
    decision: Decision


class CanaryController:
    """Runs one model's rollout against the gateway at `url`."""

    def __init__(
        self,
        store: CanaryStore,
        config: CanaryConfig,
        url: str,
        model: str,
        *,
        stable: str,
        candidate: str,
        probe_cases: Sequence[Case] = (),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._config = config
        self._url = url.rstrip("/")
        self._model = model
        self._stable = stable
        self._candidate = candidate
        self._margins = margins_from(config)
        self._sleep = sleep
        self._probe_cases = list(probe_cases)

    def start(self) -> CanaryState:
        """Put the candidate at the first step. Raises CanaryError when a rollout of this
        model is already running."""
        current = self._store.states().get(self._model)
        if current is not None and current.status == "running":
            raise CanaryError(
                f"a canary of {self._model!r} is already running at {current.weight:g}% "
                "(demigod canary abort first)"
            )
        weight = self._config.steps[0]
        state = CanaryState(
            self._model, self._stable, self._candidate, weight, "running", "started"
        )
        self._record(state, "start", f"candidate {self._candidate} at {weight:g}%")
        return state

    def window(self, weight: float) -> WindowReport:
        """One analysis window at `weight`: probes spread over it, scrapes at both ends."""
        probes = self._config.probes_per_window
        gap = self._config.window_seconds / (probes + 1)
        checks = {self._stable: [0, 0], self._candidate: [0, 0]}  # passed, run
        with httpx.Client(base_url=self._url, timeout=max(30.0, gap)) as client:
            before = scrape(self._url)
            for _ in range(probes):
                self._sleep(gap)
                for version, tally in checks.items():
                    ok, run = probe_version(client, self._model, version, self._probe_cases)
                    tally[0] += ok
                    tally[1] += run
            self._sleep(gap)
            after = scrape(self._url)
        stats = {}
        for version, (ok, run) in checks.items():
            requests, errors, p95 = version_window(before, after, self._model, version)
            stats[version] = WindowStats(requests, errors, p95, run, ok)
        stable, candidate = stats[self._stable], stats[self._candidate]
        decision = decide(stable, candidate, self._margins, self._config.steps, weight)
        return WindowReport(weight, stable, candidate, decision)

    def run(self, on_window: Callable[[WindowReport], None] = lambda report: None) -> CanaryState:
        """Windows until the candidate is promoted or rolled back, or someone else ends the
        rollout (`demigod canary abort` / `promote`). Returns the final state."""
        state = self.start()
        while True:
            report = self.window(state.weight)
            current = self._store.states().get(self._model)
            if current is None or current.status != "running":
                return current or state  # ended by another command meanwhile
            decision = report.decision
            status = TERMINAL.get(decision.action, "running")
            state = current.with_(weight=decision.weight, status=status, reason=decision.reason)
            self._record(state, decision.action, decision.reason, report)
            on_window(report)
            if status != "running":
                return state

    def _record(
        self, state: CanaryState, action: str, reason: str, report: WindowReport | None = None
    ) -> None:
        event = CanaryEvent(
            self._model, action, state.weight, state.stable, state.candidate, reason
        )
        self._store.put(state, event)
        figures = {}
        if report is not None:
            figures = {
                f"{who}_{name}": value
                for who, stats in (("stable", report.stable), ("candidate", report.candidate))
                for name, value in (
                    ("requests", stats.requests),
                    ("errors", stats.errors),
                    ("p95_seconds", stats.p95_seconds),
                    ("probe_pass_rate", stats.probe_pass_rate),
                )
            }
        log.info(
            "canary decision",
            extra={
                "model": self._model,
                "action": action,
                "weight_percent": state.weight,
                "stable": state.stable,
                "candidate": state.candidate,
                "reason": reason,
                **figures,
            },
        )


def end_rollout(store: CanaryStore, model: str, action: str) -> CanaryState:
    """`promote` (candidate at 100 %) or `abort` (candidate at 0 %) `model`'s rollout.
    Raises CanaryError when the store has no rollout of `model`."""
    current = store.states().get(model)
    if current is None:
        raise CanaryError(f"no canary of {model!r} in the store (demigod canary start first)")
    weight, status = (100.0, "promoted") if action == "promote" else (0.0, "aborted")
    reason = f"{action} by operator"
    state = current.with_(weight=weight, status=status, reason=reason)
    store.put(state, CanaryEvent(model, action, weight, current.stable, current.candidate, reason))
    log.info("canary decision", extra={"model": model, "action": action, "weight": weight})
    return state
