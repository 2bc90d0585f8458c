"""The `Engine` protocol: the one interface between the gateway and anything that runs a model.

An engine owns its scheduling: `generate` may be called concurrently by many requests;
the engine queues, batches or rejects them (the llama.cpp engine decodes up to `slots`
sequences together from a bounded queue). Engines that keep a recurrent-state cache also
implement `StateCachingEngine`, which the metrics read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable


class EngineError(Exception):
    """A model failed while serving a request (an internal error, answered 5xx)."""


class QueueFullError(EngineError):
    """The model's request queue is full; the client should retry after `retry_after` s."""

    def __init__(self, model: str, retry_after: int) -> None:
        super().__init__(f"model {model!r} is at capacity; retry after {retry_after}s")
        self.retry_after = retry_after


class ContextOverflowError(EngineError):
    """Prompt plus requested completion does not fit the model's context window."""

    def __init__(self, prompt_tokens: int, max_tokens: int, n_ctx: int) -> None:
        super().__init__(
            f"this model's context window is {n_ctx} tokens; the prompt has {prompt_tokens} "
            f"and max_tokens asks for {max_tokens} more"
        )
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.n_ctx = n_ctx


class UnsupportedFeatureError(ValueError):
    """The engine cannot do what the request asks (a `Feature` it does not declare)."""

    def __init__(self, model: str, feature: Feature) -> None:
        super().__init__(f"model {model!r} does not support {feature.replace('_', ' ')}")
        self.feature = feature


class InvalidGrammarError(ValueError):
    """An `OutputGrammar` cannot be compiled (a JSON schema the converter cannot express)."""


# What an engine may offer beyond plain sampling (`EngineInfo.features`):
# grammar: `SamplingParams.grammar`; logprobs: `SamplingParams.logprobs`;
# prompt_logprobs: `GenerationRequest.prompt_logprobs`.
Feature = Literal["grammar", "logprobs", "prompt_logprobs"]


@dataclass(frozen=True)
class OutputGrammar:
    """Constrains the output to `prefix` + JSON valid against `schema` + `suffix`.

    `schema` is JSON text (hashable, so compiled grammars are cached): a JSON schema, or
    `{}` for any JSON object. `strict`: a schema keyword no grammar enforces is an error
    (InvalidGrammarError); else such keywords are left out (demigod.engines.json_schema).
    `prefix`/`suffix` are literal text around it (tool-call markup). With `lazy`, the
    output is free until `prefix` appears, and from there must complete the constrained
    form: a model that may answer in text or call a tool.
    """

    schema: str
    strict: bool = True
    prefix: str = ""
    suffix: str = ""
    lazy: bool = False


@dataclass(frozen=True)
class SamplingParams:
    """How to pick tokens. temperature == 0 means greedy.

    `grammar`: every sampled token keeps the output inside it (the grammar decides where
    the output ends, so `ignore_eos` does not apply). `logprobs`: None for none, else each
    sampled token's log-probability and that of the `logprobs` likeliest tokens.
    `special_text`: special tokens' text is part of the output (tool-call markup such as
    `<tool_call>` is a special token in some vocabularies).
    """

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False
    grammar: OutputGrammar | None = None
    logprobs: int | None = None
    special_text: bool = False


@dataclass(frozen=True)
class GenerationRequest:
    prompt_tokens: list[int]
    sampling: SamplingParams
    request_id: str = ""
    # The client will likely send a next turn that extends this prompt with the reply
    # (a conversation): the engine may prepare that turn's state after answering.
    next_turn_expected: bool = False
    # Score the prompt: the log-probability of each prompt token given the ones before it,
    # with this many alternatives (echo + logprobs on completions). None: do not.
    prompt_logprobs: int | None = None

    def features(self) -> set[Feature]:
        """The `Feature`s this request needs."""
        needed: set[Feature] = set()
        if self.sampling.grammar is not None:
            needed.add("grammar")
        if self.sampling.logprobs is not None:
            needed.add("logprobs")
        if self.prompt_logprobs is not None:
            needed.add("prompt_logprobs")
        return needed


@dataclass(frozen=True)
class TokenLogprob:
    """One token's log-probability under the model, with the likeliest alternatives there.

    `piece` is the token's bytes (part of a UTF-8 character, possibly). `logprob` is None
    for a prompt's first token, which nothing predicts."""

    token: int
    piece: bytes
    logprob: float | None
    top: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class GenerationEvent:
    """A piece of output. The last event of a generation has `finish_reason` set.

    `logprobs`: the tokens sampled since the previous event (when asked for). The first
    event carries `prompt_logprobs` when the request asked for them."""

    text: str
    completion_tokens: int
    finish_reason: Literal["stop", "length"] | None = None
    logprobs: tuple[TokenLogprob, ...] = ()
    prompt_logprobs: tuple[TokenLogprob, ...] | None = None


@dataclass(frozen=True)
class EngineInfo:
    """What the gateway needs to know about a loaded model."""

    architecture: str
    n_ctx: int
    n_params: int
    file_size: int
    chat_template: str | None = None
    bos_token: str = ""
    eos_token: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    features: frozenset[Feature] = frozenset()
    n_vocab: int = 0  # token ids are 0 .. n_vocab - 1


class GenerationStream(Protocol):
    """The events of one generation. Leaving `async with` (or `aclose()`) cancels it."""

    def __aiter__(self) -> AsyncIterator[GenerationEvent]: ...

    async def __anext__(self) -> GenerationEvent: ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> GenerationStream: ...

    async def __aexit__(self, *exc: object) -> None: ...


@runtime_checkable
class Engine(Protocol):
    """A loaded model. Methods other than `generate` are cheap and thread-safe."""

    name: str
    info: EngineInfo

    def tokenize(
        self, text: str, *, add_special: bool = True, parse_special: bool = False
    ) -> list[int]:
        """Token ids of `text`, as the model will see them. `add_special` adds BOS where the
        model wants it; `parse_special` reads special-token text (chat templates) as tokens."""
        ...

    def detokenize(self, tokens: list[int]) -> str:
        """The text of `tokens` (special tokens' text included); ids must be in range."""
        ...

    def generate(self, request: GenerationRequest) -> GenerationStream:
        """Stream the completion of `request.prompt_tokens`.

        Raises QueueFullError before the first event when the queue is full, and
        ContextOverflowError when the prompt and max_tokens do not fit. Closing the
        iterator early (client gone) stops the generation at the next token.
        """
        ...

    def health(self) -> bool:
        """True while the engine can serve."""
        ...

    def queue_depth(self) -> int:
        """Requests waiting or running."""
        ...

    async def close(self) -> None:
        """Finish or abort work and free the model."""
        ...


@dataclass(frozen=True)
class SchedulerStats:
    """Cumulative scheduler counters: requests admitted to a slot and the seconds they
    waited for it; decode steps and the sequences those steps advanced (their ratio is the
    mean batch size). And the occupancy now: requests waiting for a slot, sequences holding
    one, and the slots. Each slot reserves one sequence's state, so running / slots is the
    share of the reserved state memory in use (an SSM's equivalent of KV-cache use)."""

    admitted: int = 0
    queue_wait_seconds: float = 0.0
    steps: int = 0
    stepped_sequences: int = 0
    waiting: int = 0
    running: int = 0
    slots: int = 0
    busy_slots: frozenset[int] = frozenset()  # the slots holding a sequence now

    @property
    def state_usage(self) -> float:
        return self.running / self.slots if self.slots else 0.0


@runtime_checkable
class BatchingEngine(Protocol):
    """An engine whose requests wait for, then share, decode slots."""

    def scheduler_stats(self) -> SchedulerStats:
        """Counters since the engine started, and the occupancy now."""
        ...


@dataclass(frozen=True)
class StateCacheStats:
    """Recurrent-state cache counters by tier (ram, disk, shared): lookups served, lookups
    that missed the tier, bytes held."""

    hits: dict[str, int] = field(default_factory=dict)
    misses: dict[str, int] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)


@runtime_checkable
class StateCachingEngine(Protocol):
    """An engine that saves and restores sequence states (demigod.engines.state_cache)."""

    def state_cache_stats(self) -> StateCacheStats | None:
        """The cache's counters; None when the cache is switched off."""
        ...
