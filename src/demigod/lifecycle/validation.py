"""Validate a GGUF model: held-out perplexity, and how far a quantized file strays from
its F16 reference (perplexity delta, KL divergence, top-1 agreement). See docs/validation.md.

Both models read the same sliding windows of the same tokens in lockstep (see
`demigod.lifecycle.perplexity`), so at every scored position the two next-token
distributions are compared directly; nothing the size of (tokens x vocabulary) is kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from demigod.evaluation.result import EvaluationResult
from demigod.lifecycle.perplexity import (
    load_for_scoring,
    log_softmax,
    negative_log_likelihoods,
    scored_windows,
    tokenize_for_scoring,
    window_spans,
)

SUITE = "perplexity"

# Metric names, as the registry records them and the promotion gates refer to them.
PERPLEXITY = "perplexity"
REFERENCE_PERPLEXITY = "reference_perplexity"
PERPLEXITY_DELTA = "perplexity_delta"  # (candidate - reference) / reference
KL_DIVERGENCE = "kl_divergence_mean"  # nats per token, KL(reference || candidate)
TOP1_AGREEMENT = "top1_agreement"  # share of positions with the same most likely token
TOKENS_SCORED = "tokens_scored"

DEFAULT_MAX_TOKENS = 4096

WindowProgress = Callable[[int, int], None]  # (windows done, windows in all)


@dataclass(frozen=True)
class Comparison:
    """Raw measurements of a candidate (and its reference, when one was given)."""

    tokens_scored: int
    perplexity: float
    reference_perplexity: float | None = None
    kl_divergence_mean: float | None = None
    top1_agreement: float | None = None

    @property
    def perplexity_delta(self) -> float | None:
        if self.reference_perplexity is None:
            return None
        return (self.perplexity - self.reference_perplexity) / self.reference_perplexity


def validate_gguf(
    candidate: Path,
    reference: Path | None,
    *,
    text: str,
    n_ctx: int,
    stride: int,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    threads: int | None = None,
    progress: WindowProgress | None = None,
    max_perplexity: float | None = None,
    max_perplexity_delta: float | None = None,
    max_kl_divergence: float | None = None,
    min_top1_agreement: float | None = None,
) -> list[EvaluationResult]:
    """Measure `candidate` on the held-out `text`, and against `reference` when given.

    Windows of `n_ctx` tokens every `stride` tokens; the text is cut to `max_tokens`
    tokens (of the candidate's tokenizer). Each `max_*`/`min_*` argument turns its metric
    into a gate (threshold and pass recorded); unset, the metric is only recorded.
    `progress(done, total)` is called after each window (for a progress bar).
    Returns perplexity and tokens_scored, plus reference_perplexity, perplexity_delta
    (relative), kl_divergence_mean and top1_agreement with a reference. Raises ValueError
    for a missing file, a text under 2 tokens, a bad window, or a reference whose
    vocabulary differs from the candidate's.
    """
    comparison = compare_gguf(
        candidate, reference, text=text, n_ctx=n_ctx, stride=stride,
        max_tokens=max_tokens, threads=threads, progress=progress,
    )  # fmt: skip
    versions = tool_versions()

    def result(
        metric: str, value: float, threshold: float | None, higher_is_better: bool
    ) -> EvaluationResult:
        passed = None
        if threshold is not None:
            passed = value >= threshold if higher_is_better else value <= threshold
        return EvaluationResult(SUITE, metric, value, threshold, passed, dict(versions))

    results = [
        result(PERPLEXITY, comparison.perplexity, max_perplexity, higher_is_better=False),
        result(TOKENS_SCORED, float(comparison.tokens_scored), None, higher_is_better=True),
    ]
    if comparison.reference_perplexity is not None:
        delta = comparison.perplexity_delta
        assert delta is not None
        assert comparison.kl_divergence_mean is not None
        assert comparison.top1_agreement is not None
        results += [
            result(REFERENCE_PERPLEXITY, comparison.reference_perplexity, None, False),
            result(PERPLEXITY_DELTA, delta, max_perplexity_delta, higher_is_better=False),
            result(KL_DIVERGENCE, comparison.kl_divergence_mean, max_kl_divergence, False),
            result(TOP1_AGREEMENT, comparison.top1_agreement, min_top1_agreement, True),
        ]
    return results


def compare_gguf(
    candidate: Path,
    reference: Path | None,
    *,
    text: str,
    n_ctx: int,
    stride: int,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    threads: int | None = None,
    progress: WindowProgress | None = None,
) -> Comparison:
    """The measurements behind `validate_gguf` (same arguments and errors)."""
    window_spans(0, n_ctx, stride)  # validates the window before any model loads
    model = load_for_scoring(candidate, n_ctx, threads)
    ref_model = None
    try:
        tokens = tokenize_for_scoring(model, text, max_tokens)
        total = len(window_spans(len(tokens), n_ctx, stride))
        report = progress or (lambda done, total: None)
        if reference is None:
            nll, scored = 0.0, 0
            for done, window in enumerate(scored_windows(model, tokens, n_ctx, stride), 1):
                nll += float(negative_log_likelihoods(window).sum())
                scored += len(window.targets)
                report(done, total)
            return Comparison(tokens_scored=scored, perplexity=math.exp(nll / scored))

        ref_model = load_for_scoring(reference, n_ctx, threads)
        if ref_model.n_vocab() != model.n_vocab():
            raise ValueError(
                f"{reference} has a vocabulary of {ref_model.n_vocab()} tokens and {candidate} "
                f"one of {model.n_vocab()}: not the same model"
            )
        nll = ref_nll = kl = 0.0
        agree = scored = 0
        pairs = zip(
            scored_windows(model, tokens, n_ctx, stride),
            scored_windows(ref_model, tokens, n_ctx, stride),
            strict=True,
        )
        for done, (window, ref_window) in enumerate(pairs, 1):
            log_q = log_softmax(window.logits)
            log_p = log_softmax(ref_window.logits)
            rows = np.arange(len(window.targets))
            nll -= float(log_q[rows, window.targets].sum())
            ref_nll -= float(log_p[rows, window.targets].sum())
            # KL(P || Q) = sum p (log p - log q): the information the candidate loses.
            kl += float((np.exp(log_p) * (log_p - log_q)).sum())
            agree += int((log_q.argmax(axis=1) == log_p.argmax(axis=1)).sum())
            scored += len(window.targets)
            report(done, total)
        return Comparison(
            tokens_scored=scored,
            perplexity=math.exp(nll / scored),
            reference_perplexity=math.exp(ref_nll / scored),
            kl_divergence_mean=kl / scored,
            top1_agreement=agree / scored,
        )
    finally:
        model.close()
        if ref_model is not None:
            ref_model.close()


def tool_versions() -> dict[str, str]:
    """What computed the numbers: the engine (llama.cpp through llama-cpp-python)."""
    versions = {"method": "sliding-window"}
    for package in ("llama-cpp-python", "demigod"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions
