"""The prompt-injection screen: normalisation, then rules, then the learned model.

`PromptScreen.screen(segments)` reads every segment (a user message, a tool result, a
pasted document) and the base64/hex spans decoded from it, and returns one `Verdict`:
`block` when a rule matches or the model's score reaches the block threshold (1.0, the
default: never), `flag` when the model's score reaches the (lower) threshold, else
`allow`. By default the model alone does not block: twice a threshold chosen on the
validation split blocked many independently written benign texts (round two: 12.9 %,
45.8 % of long documents; round four: 7.1 %, 16.4 % of long documents) while validation
showed 1 % and 0 % (docs/security-waf.md).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from demigod.config import WafConfig
from demigod.security.waf.model import InjectionModel, shipped_model
from demigod.security.waf.normalize import clean, decoded_spans, fold
from demigod.security.waf.rules import RULES, RULESET_VERSION, Rule, match_rules

# The flag threshold is chosen on the validation split (bench/waf_quality.py: <= 1 % of
# benign texts suspected); the block threshold is 1.0 (see above).
DEFAULT_THRESHOLD: float = WafConfig.model_fields["threshold"].default
DEFAULT_BLOCK_THRESHOLD: float = WafConfig.model_fields["block_threshold"].default
# Text beyond this many characters per segment is not read (bounded cost per request).
DEFAULT_MAX_CHARS: int = WafConfig.model_fields["max_chars"].default
# The model scores only text of at least this many words: on a short prompt a few hashed
# n-grams decide alone ("Smoke test after a deploy: say hello." scored 0.75); the rules
# still read everything. 8 on validation: 1 benign text fewer suspected, no attack lost.
MIN_MODEL_WORDS = 8
_WORDS = re.compile(r"[^\W\d_]{2,}")
# Chinese and Japanese are written without spaces: two characters count as a word.
_CJK = re.compile("[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def word_count(folded: str) -> int:
    return len(_WORDS.findall(folded)) + len(_CJK.findall(folded)) // 2


@dataclass(frozen=True)
class Segment:
    """One piece of a request to screen, and where it came from (e.g. `messages[2]`)."""

    source: str
    text: str


@dataclass(frozen=True)
class Verdict:
    verdict: Literal["block", "flag", "allow"]
    score: float  # 1.0 when a rule matched, else the model's P(injection)
    rules: tuple[str, ...]  # ids of the rules that matched, e.g. ("PI-001",)
    model_score: float  # the model's highest P(injection) over segments and windows
    sources: tuple[str, ...] = field(default=())  # segments that matched or scored highest
    ruleset: str = RULESET_VERSION

    @property
    def blocked(self) -> bool:
        return self.verdict == "block"

    @property
    def suspected(self) -> bool:
        """Blocked or flagged: the request is logged and counted as a suspected injection."""
        return self.verdict != "allow"


class PromptScreen:
    """Thread-safe; the model is trained on first use (or pass `model`)."""

    def __init__(
        self,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        block_threshold: float = DEFAULT_BLOCK_THRESHOLD,
        max_chars: int = DEFAULT_MAX_CHARS,
        rules: tuple[Rule, ...] = RULES,
        model: InjectionModel | None = None,
        model_factory: Callable[[], InjectionModel] = shipped_model,
    ) -> None:
        self.threshold = threshold
        self.block_threshold = max(block_threshold, threshold)
        self._max_chars = max_chars
        self._rules = rules
        self._model = model
        self._model_factory = model_factory
        self._lock = threading.Lock()

    def model(self) -> InjectionModel:
        with self._lock:
            if self._model is None:
                self._model = self._model_factory()
            return self._model

    def screen_text(self, text: str) -> Verdict:
        return self.screen([Segment("prompt", text)])

    def screen(self, segments: Iterable[Segment]) -> Verdict:
        """The verdict over all `segments` (a rule match anywhere, or the highest score)."""
        model = self.model()
        rules: list[str] = []
        sources: list[str] = []
        best_score, best_source = 0.0, ""
        for segment in segments:
            for source, cleaned, folded in self._readings(segment):
                matched = match_rules(folded, self._rules)
                if matched:
                    rules += [rule for rule in matched if rule not in rules]
                    sources.append(source)
                if word_count(folded) < MIN_MODEL_WORDS:
                    continue  # a fragment: too few n-grams for the model to be trusted
                # Below both the threshold and the best so far, the score changes nothing:
                # the model may skip its encoder (the cascade).
                score = model.score_cleaned(cleaned, at_least=max(self.threshold, best_score))
                if score > best_score:
                    best_score, best_source = score, source
        flagged_by_model = best_score >= self.threshold
        if flagged_by_model and best_source not in sources:
            sources.append(best_source)
        verdict: Literal["block", "flag", "allow"] = "allow"
        blocked_by_model = self.block_threshold < 1.0 and best_score >= self.block_threshold
        if rules or blocked_by_model:
            verdict = "block"
        elif flagged_by_model:
            verdict = "flag"
        return Verdict(
            verdict=verdict,
            score=1.0 if rules else round(best_score, 4),
            rules=tuple(rules),
            model_score=round(best_score, 4),
            sources=tuple(sources),
        )

    def _readings(self, segment: Segment) -> Iterable[tuple[str, str, str]]:
        """(source, cleaned, folded) of `segment`, then of each base64/hex span decoded
        from it."""
        cleaned = clean(segment.text[: self._max_chars])
        yield segment.source, cleaned, fold(cleaned)
        for index, decoded in enumerate(decoded_spans(cleaned)):
            source = f"{segment.source}:decoded[{index}]"
            inner = clean(decoded)
            yield source, inner, fold(inner)
            # One more level: base64 of hex, hex of base64.
            for inner_index, twice in enumerate(decoded_spans(inner)):
                again = clean(twice)
                yield f"{source}:decoded[{inner_index}]", again, fold(again)
