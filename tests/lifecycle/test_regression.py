"""Regressions against the recorded evaluation use the promotion gates' tolerances."""

from __future__ import annotations

from demigod.config import PromotionGates
from demigod.lifecycle.regression import regressions

GATES = PromotionGates(max_perplexity_delta=0.05, eval_score_epsilon=0.01)
RECORDED = {
    ("perplexity", "perplexity"): 20.0,
    ("perplexity", "tokens_scored"): 4096.0,
    ("hemlock", "pass_rate"): 0.9,
    ("lm_eval", "acc,none"): 0.5,
    ("lm_eval", "acc_stderr,none"): 0.02,
}


def test_within_tolerance_is_no_regression() -> None:
    measured = {
        ("perplexity", "perplexity"): 20.9,  # +4.5 %
        ("perplexity", "tokens_scored"): 100.0,  # a count, not quality
        ("hemlock", "pass_rate"): 0.895,
        ("lm_eval", "acc,none"): 0.495,
        ("lm_eval", "acc_stderr,none"): 0.5,  # an error bar, not a score
    }
    assert regressions(RECORDED, measured, GATES) == []


def test_each_gate_metric_worse_than_recorded_is_named() -> None:
    measured = {
        ("perplexity", "perplexity"): 21.5,  # +7.5 %
        ("hemlock", "pass_rate"): 0.8,
        ("lm_eval", "acc,none"): 0.45,
        ("lm_eval", "new_metric"): 0.0,  # nothing recorded to compare with
    }
    found = {(r.suite, r.metric): round(r.limit, 6) for r in regressions(RECORDED, measured, GATES)}
    assert found == {
        ("perplexity", "perplexity"): 21.0,
        ("hemlock", "pass_rate"): 0.89,
        ("lm_eval", "acc,none"): 0.49,
    }
