"""Evaluation regressions: a version measured again (new engine, converter or evaluation
code) against what was recorded for it before, with the promotion gates' tolerances. The
eval-regression workflow fails a pull request on any (`demigod models validate
--against-recorded`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from demigod.config import PromotionGates
from demigod.lifecycle.gates import HEMLOCK_PASS_RATE_METRIC, HEMLOCK_SUITE, LM_EVAL_SUITE
from demigod.lifecycle.validation import PERPLEXITY
from demigod.lifecycle.validation import SUITE as PERPLEXITY_SUITE


class Measurement(Protocol):
    @property
    def suite(self) -> str: ...

    @property
    def metric(self) -> str: ...

    @property
    def value(self) -> float: ...


@dataclass(frozen=True)
class Regression:
    suite: str
    metric: str
    recorded: float
    measured: float
    limit: float  # the worst value still accepted

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        return (
            f"{self.suite}/{self.metric}: {self.measured:.6g} vs {self.recorded:.6g} recorded "
            f"(limit {self.limit:.6g})"
        )


def latest_values(measurements: Iterable[Measurement]) -> dict[tuple[str, str], float]:
    """The last value of each (suite, metric); records come oldest first."""
    return {(m.suite, m.metric): m.value for m in measurements}


def regressions(
    recorded: dict[tuple[str, str], float],
    measured: dict[tuple[str, str], float],
    gates: PromotionGates,
) -> list[Regression]:
    """Metrics measured worse than recorded beyond the gates' tolerance: perplexity more
    than `max_perplexity_delta` (relative) higher, the Hemlock pass rate or an lm-eval
    score more than `eval_score_epsilon` lower. Metrics present on one side only are not
    compared."""
    found = []
    for (suite, metric), before in sorted(recorded.items()):
        after = measured.get((suite, metric))
        if after is None:
            continue
        if (suite, metric) == (PERPLEXITY_SUITE, PERPLEXITY):
            limit = before * (1 + gates.max_perplexity_delta)
            worse = after > limit
        elif (suite, metric) == (HEMLOCK_SUITE, HEMLOCK_PASS_RATE_METRIC) or (
            suite == LM_EVAL_SUITE and "stderr" not in metric  # a score, not its error bar
        ):
            limit = before - gates.eval_score_epsilon
            worse = after < limit
        else:
            continue  # counts and diagnostics, not quality
        if worse:
            found.append(Regression(suite, metric, before, after, limit))
    return found
