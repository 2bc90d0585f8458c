"""Promotion gates: what a version must have measured before it may become `stable`.

Pure logic over recorded evaluations (the validation step records them): a gate whose
measurement is missing fails, naming the command that produces it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from demigod.config import PromotionGates
from demigod.lifecycle.validation import PERPLEXITY_DELTA as PERPLEXITY_DELTA_METRIC
from demigod.lifecycle.validation import SUITE as PERPLEXITY_SUITE
from demigod.registry import EvaluationRecord, VersionInfo

# (suite, metric) names the validation steps record and the gates read.
HEMLOCK_SUITE = "hemlock"
HEMLOCK_PASS_RATE_METRIC = "pass_rate"
LM_EVAL_SUITE = "lm_eval"


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    detail: str
    value: float | None = None
    threshold: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def latest(results: Sequence[EvaluationRecord], suite: str) -> dict[str, EvaluationRecord]:
    """The newest result of each metric of `suite`."""
    found: dict[str, EvaluationRecord] = {}
    for result in results:
        if result.suite == suite:
            found[result.metric] = result  # results come oldest first
    return found


def check_gates(
    gates: PromotionGates,
    version: VersionInfo,
    results: Sequence[EvaluationRecord],
    stable: VersionInfo | None,
    stable_results: Sequence[EvaluationRecord],
) -> list[GateResult]:
    """Every gate's verdict for promoting `version` over the current `stable` (or none)."""
    return [
        _perplexity_gate(gates, version, results),
        _hemlock_gate(gates, results),
        _eval_gate(gates, results, stable, stable_results),
    ]


def _perplexity_gate(
    gates: PromotionGates, version: VersionInfo, results: Sequence[EvaluationRecord]
) -> GateResult:
    name = "perplexity_delta"
    if version.reference is None:
        return GateResult(name, True, "no F16 reference: the version is its own reference")
    delta = latest(results, PERPLEXITY_SUITE).get(PERPLEXITY_DELTA_METRIC)
    if delta is None:
        return GateResult(
            name, False, "no perplexity delta recorded: run `demigod models validate`"
        )
    limit = gates.max_perplexity_delta
    passed = delta.value <= limit
    return GateResult(
        name,
        passed,
        f"perplexity {delta.value:+.2%} vs {version.reference} (limit {limit:+.0%})",
        delta.value,
        limit,
    )


def _hemlock_gate(gates: PromotionGates, results: Sequence[EvaluationRecord]) -> GateResult:
    name = "hemlock_pass_rate"
    rate = latest(results, HEMLOCK_SUITE).get(HEMLOCK_PASS_RATE_METRIC)
    if rate is None:
        return GateResult(name, False, "no Hemlock run recorded: run `demigod models validate`")
    limit = gates.min_hemlock_pass_rate
    return GateResult(
        name,
        rate.value >= limit,
        f"Hemlock pass rate {rate.value:.1%} (minimum {limit:.0%})",
        rate.value,
        limit,
    )


def _eval_gate(
    gates: PromotionGates,
    results: Sequence[EvaluationRecord],
    stable: VersionInfo | None,
    stable_results: Sequence[EvaluationRecord],
) -> GateResult:
    name = "eval_score"
    if stable is None:
        return GateResult(name, True, "no current stable to compare with")
    baseline = latest(stable_results, LM_EVAL_SUITE)
    if not baseline:
        return GateResult(name, True, f"stable {stable.label} has no lm-eval score to compare")
    mine = latest(results, LM_EVAL_SUITE)
    epsilon = gates.eval_score_epsilon
    for metric, theirs in sorted(baseline.items()):
        ours = mine.get(metric)
        if ours is None:
            return GateResult(
                name, False, f"no lm-eval {metric} recorded: run `demigod models validate`"
            )
        if ours.value < theirs.value - epsilon:
            return GateResult(
                name,
                False,
                f"lm-eval {metric} {ours.value:.4f} < stable {stable.label}'s "
                f"{theirs.value:.4f} - {epsilon}",
                ours.value,
                theirs.value - epsilon,
            )
    return GateResult(
        name, True, f"lm-eval scores within {epsilon} of stable {stable.label} or better"
    )
