"""What every in-process engine shares: requests go to a `BatchScheduler` on its own thread."""

from __future__ import annotations

from demigod.engines.base import (
    ContextOverflowError,
    EngineInfo,
    GenerationRequest,
    SchedulerStats,
    UnsupportedFeatureError,
)
from demigod.engines.scheduler import BatchScheduler, TokenStream


class ScheduledEngine:
    """The scheduler-facing half of the `Engine` protocol (generate, health, queue depth).

    Subclasses set `info` and `_scheduler` in their constructor, add `tokenize`, and
    close the scheduler in `close`, after setting `_closed`.
    """

    name: str
    info: EngineInfo
    _scheduler: BatchScheduler[GenerationRequest]
    _closed: bool = False

    def generate(self, request: GenerationRequest) -> TokenStream:
        """Queue `request`. Raises ValueError on an empty prompt, UnsupportedFeatureError
        for a feature the engine lacks, InvalidGrammarError for a grammar it cannot compile,
        ContextOverflowError when prompt plus `max_tokens` exceed the context,
        QueueFullError when the queue is full."""
        prompt = request.prompt_tokens
        max_tokens = request.sampling.max_tokens
        if not prompt:
            raise ValueError("the prompt must hold at least one token")
        if missing := sorted(request.features() - self.info.features):
            raise UnsupportedFeatureError(self.name, missing[0])
        if len(prompt) + max_tokens > self.info.n_ctx:
            raise ContextOverflowError(len(prompt), max_tokens, self.info.n_ctx)
        self.check(request)
        return self._scheduler.submit(request)

    def check(self, request: GenerationRequest) -> None:
        """Engine-specific checks before queueing (on the caller's thread); raises the
        request's error. None by default."""

    def health(self) -> bool:
        return not self._closed and self._scheduler.alive()

    def queue_depth(self) -> int:
        return self._scheduler.depth()

    def scheduler_stats(self) -> SchedulerStats:
        """Queue waits and decode-step batch sizes since the engine started."""
        return self._scheduler.stats()
