"""How well the screen separates injections from benign text, measured as a user would:
on labelled sets it was never trained or tuned on.

The model threshold is chosen on the *validation* split (`choose_threshold`: the lowest
threshold at which the whole screen blocks at most the target share of validation
benign texts); the frozen test sets (bench/heldout/, split by family before any
training) are only measured, per language, per kind and per source. Run:
`python bench/waf_quality.py` (the numbers in docs/security-waf.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from demigod.security.waf.model import InjectionModel, LabelledText, parse_rows
from demigod.security.waf.screen import PromptScreen, Verdict

TARGET_FALSE_POSITIVE_RATE = 0.01


@dataclass(frozen=True)
class Rate:
    """Blocked shares of one group of rows (e.g. `language=fr`)."""

    group: str
    attacks: int
    attacks_blocked: int
    benign: int
    benign_blocked: int

    @property
    def attack_block_rate(self) -> float | None:
        return self.attacks_blocked / self.attacks if self.attacks else None

    @property
    def benign_block_rate(self) -> float | None:
        return self.benign_blocked / self.benign if self.benign else None


def load_file(path: Path) -> list[LabelledText]:
    return parse_rows(path.read_text("utf-8"), path.name)


def rates(
    rows: Sequence[LabelledText], blocked: Sequence[bool], key: Callable[[LabelledText], str]
) -> list[Rate]:
    """One Rate per value of `key`, in sorted order."""
    groups: dict[str, list[int]] = {}
    for row, was_blocked in zip(rows, blocked, strict=True):
        counts = groups.setdefault(key(row), [0, 0, 0, 0])
        index = 0 if row.is_injection else 2
        counts[index] += 1
        counts[index + 1] += was_blocked
    return [Rate(group, *counts) for group, counts in sorted(groups.items())]


def verdicts(screen: PromptScreen, rows: Sequence[LabelledText]) -> list[Verdict]:
    return [screen.screen_text(row.prompt) for row in rows]


def choose_threshold(
    model: InjectionModel,
    validation: Sequence[LabelledText],
    max_false_positive_rate: float = TARGET_FALSE_POSITIVE_RATE,
) -> float:
    """The lowest model threshold at which the screen (rules or model) suspects at most
    `max_false_positive_rate` of the benign validation texts (waf.threshold)."""
    screen = PromptScreen(threshold=0.0, model=model)  # every score in full: no cascade
    benign = [
        v
        for v, r in zip(verdicts(screen, validation), validation, strict=True)
        if not r.is_injection
    ]
    allowed = int(max_false_positive_rate * len(benign)) - sum(bool(v.rules) for v in benign)
    scores = sorted((v.model_score for v in benign if not v.rules), reverse=True)
    if allowed < 0:
        return 1.0  # the rules alone exceed the budget: the model may add nothing
    if allowed >= len(scores):
        return 0.0
    return min(1.0, scores[allowed] + 1e-4)  # just above the first score not allowed


def choose_block_threshold(model: InjectionModel, validation: Sequence[LabelledText]) -> float:
    """The lowest model threshold above every benign validation text's model score
    (waf.block_threshold: the model alone blocks no benign validation text)."""
    screen = PromptScreen(threshold=0.0, model=model)  # every score in full: no cascade
    benign = [r for r in validation if not r.is_injection]
    return min(1.0, max(v.model_score for v in verdicts(screen, benign)) + 1e-4)


@dataclass(frozen=True)
class Report:
    """The screen at one threshold on one labelled set."""

    threshold: float
    overall: Rate
    by_language: list[Rate]
    by_kind: list[Rate]
    by_source: list[Rate]


def report(
    screen: PromptScreen, rows: Sequence[LabelledText], *, counted: str = "blocked"
) -> Report:
    """Shares of rows `blocked` (or `suspected`: blocked or flagged) by `screen`."""
    blocked = [getattr(v, counted) for v in verdicts(screen, rows)]
    return Report(
        screen.threshold,
        rates(rows, blocked, lambda r: "all")[0],
        rates(rows, blocked, lambda r: r.language),
        rates(rows, blocked, lambda r: r.kind),
        rates(rows, blocked, lambda r: r.source.split(":")[0]),
    )
