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


@dataclass(frozen=True)
class SamplingParams:
    """How to pick tokens. temperature == 0 means greedy."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False


@dataclass(frozen=True)
class GenerationRequest:
    prompt_tokens: list[int]
    sampling: SamplingParams
    request_id: str = ""
    # The client will likely send a next turn that extends this prompt with the reply
    # (a conversation): the engine may prepare that turn's state after answering.
    next_turn_expected: bool = False


@dataclass(frozen=True)
class GenerationEvent:
    """A piece of output. The last event of a generation has `finish_reason` set."""

    text: str
    completion_tokens: int
    finish_reason: Literal["stop", "length"] | None = None


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
    mean batch size)."""

    admitted: int = 0
    queue_wait_seconds: float = 0.0
    steps: int = 0
    stepped_sequences: int = 0


@dataclass(frozen=True)
class SlotOccupancy:
    """A batching engine now: requests waiting for a slot, sequences holding one, slots.
    Each slot reserves one sequence's state, so running / slots is the share of the
    reserved state memory in use (an SSM's equivalent of a KV cache's utilisation)."""

    waiting: int
    running: int
    slots: int

    @property
    def state_usage(self) -> float:
        return self.running / self.slots if self.slots else 0.0


@runtime_checkable
class BatchingEngine(Protocol):
    """An engine whose requests wait for, then share, decode slots."""

    def scheduler_stats(self) -> SchedulerStats:
        """Counters since the engine started."""
        ...

    def slot_occupancy(self) -> SlotOccupancy:
        """Requests waiting and running now."""
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
