"""Promotion gates as pure logic over recorded evaluations."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from demigod.config import PromotionGates
from demigod.lifecycle.gates import check_gates
from demigod.registry import EvaluationRecord, VersionInfo

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def version(label: str, reference: str | None = "v1") -> VersionInfo:
    return VersionInfo(
        model="m",
        label=label,
        sha256="0" * 64,
        quantization="Q4_0",
        size_bytes=1,
        storage_uri="file:///x",
        backend="llama.cpp",
        status="ready",
        source_uri=None,
        revision=None,
        reference=reference,
        snapshot_uri=None,
        created_at=NOW,
        last_used_at=NOW,
    )


def record(suite: str, metric: str, value: float, label: str = "v2") -> EvaluationRecord:
    return EvaluationRecord("m", label, suite, metric, value, None, None, {}, {}, NOW)


def verdicts(
    results: list[EvaluationRecord],
    stable_results: list[EvaluationRecord] | None = None,
    reference: str | None = "v1",
) -> dict[str, bool]:
    stable = version("v1", None) if stable_results is not None else None
    gates = check_gates(
        PromotionGates(), version("v2", reference), results, stable, stable_results or []
    )
    return {gate.gate: gate.passed for gate in gates}


def test_missing_measurements_fail_their_gates() -> None:
    assert verdicts([]) == {"perplexity_delta": False, "hemlock_pass_rate": False,
                            "eval_score": True}  # fmt: skip
    # A version without an F16 reference is its own reference.
    assert verdicts([], reference=None)["perplexity_delta"] is True


def test_the_latest_result_of_a_metric_counts() -> None:
    results = [
        record("perplexity", "perplexity_delta", 0.20),
        record("perplexity", "perplexity_delta", 0.01),
        record("hemlock", "pass_rate", 1.0),
        record("hemlock", "pass_rate", 0.90),
    ]
    assert verdicts(results) == {
        "perplexity_delta": True,
        "hemlock_pass_rate": False,
        "eval_score": True,
    }


@settings(deadline=None)  # the shared CI cores stall at times
@given(
    delta=st.floats(-0.5, 0.5),
    rate=st.floats(0, 1),
    ours=st.floats(0, 1),
    theirs=st.floats(0, 1),
)
def test_each_gate_is_its_threshold(delta: float, rate: float, ours: float, theirs: float) -> None:
    gates = PromotionGates()
    results = [
        record("perplexity", "perplexity_delta", delta),
        record("hemlock", "pass_rate", rate),
        record("lm_eval", "demigod_smoke/acc", ours),
    ]
    stable = [record("lm_eval", "demigod_smoke/acc", theirs, "v1")]
    assert verdicts(results, stable) == {
        "perplexity_delta": delta <= gates.max_perplexity_delta,
        "hemlock_pass_rate": rate >= gates.min_hemlock_pass_rate,
        "eval_score": ours >= theirs - gates.eval_score_epsilon,
    }


def test_a_stable_score_the_candidate_lacks_fails() -> None:
    stable = [record("lm_eval", "demigod_smoke/acc", 0.5, "v1")]
    assert verdicts([], stable)["eval_score"] is False
    assert verdicts([], [])["eval_score"] is True  # a stable without scores: nothing to beat
