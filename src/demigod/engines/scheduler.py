"""Continuous batching: a bounded wait queue, a fixed set of slots, one decode step at a time.

An engine supplies a `BatchExecutor` (it knows how to start a sequence in a slot, advance
every active sequence by one batched decode, and free a slot); the scheduler owns the
thread, the queue, admission at token boundaries, cancellation and the asyncio bridge.
The gateway sees only `TokenStream`s, whatever the engine.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from dataclasses import replace
from typing import Any, Generic, Protocol, TypeVar

from demigod.engines.base import (
    EngineError,
    GenerationEvent,
    QueueFullError,
    SchedulerStats,
)

log = logging.getLogger(__name__)

_END = object()

Work = TypeVar("Work")
Work_contra = TypeVar("Work_contra", contravariant=True)


class JobContext:
    """Handed to a running sequence: emit events, and stop when `cancelled` is set."""

    def __init__(self, loop: asyncio.AbstractEventLoop, outbox: Outbox) -> None:
        self._loop = loop
        self._outbox = outbox
        self._events: asyncio.Queue[Any] = asyncio.Queue()
        self.cancelled = threading.Event()
        self.submitted = time.monotonic()

    def emit(self, event: GenerationEvent) -> None:
        self._put(event)

    def _put(self, item: Any) -> None:
        self._outbox.post(self, item)


class Outbox:
    """What the scheduler's thread has for the event loops, handed over once per decode
    step: one wake-up per loop and step, not one per token. Each wake-up makes the decode
    thread give the GIL to the loop and wait to get it back, which at eight sequences was
    the largest Python cost of a step. Used only from the scheduler's thread."""

    def __init__(self) -> None:
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple[JobContext, Any]]] = {}

    def post(self, context: JobContext, item: Any) -> None:
        self._pending.setdefault(context._loop, []).append((context, item))

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for loop, items in pending.items():
            try:
                loop.call_soon_threadsafe(_deliver, items)
            except RuntimeError:  # the loop is gone (shutdown): nobody is listening
                for context, _ in items:
                    context.cancelled.set()


def _deliver(items: list[tuple[JobContext, Any]]) -> None:
    for context, item in items:
        context._events.put_nowait(item)


class TokenStream:
    """The async side of a sequence. Close it (or leave `async with`) to cancel it."""

    def __init__(self, context: JobContext) -> None:
        self._context = context
        self._done = False

    def __aiter__(self) -> TokenStream:
        return self

    async def __anext__(self) -> GenerationEvent:
        if self._done:
            raise StopAsyncIteration
        item = await self._context._events.get()
        if item is _END:
            self._done = True
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            self._done = True
            raise item
        assert isinstance(item, GenerationEvent)
        return item

    async def aclose(self) -> None:
        self._context.cancelled.set()
        self._done = True

    async def __aenter__(self) -> TokenStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class BatchExecutor(Protocol[Work_contra]):
    """The engine side of continuous batching. Called only from the scheduler's thread."""

    def start(self, slot: int, work: Work_contra, context: JobContext) -> None:
        """Begin `work` in the free `slot`; its events go to `context`."""
        ...

    def step(self) -> list[int]:
        """Advance every started sequence by one batched decode; return the slots that
        finished (their last event already emitted). Raises on a failed decode."""
        ...

    def release(self, slot: int) -> None:
        """The scheduler is done with `slot` (finished, cancelled or failed). The executor
        may keep it a little longer for its own work, reported by `busy`."""
        ...

    def busy(self) -> set[int]:
        """Released slots the executor still uses; `step` finishes that work."""
        ...

    def abandon(self) -> None:
        """Drop the executor's own pending work (after a failed step)."""
        ...

    def claim(self, work: Work_contra, busy: set[int]) -> int | None:
        """One of the `busy` slots whose work `work` can continue, or None; `start` is then
        called with that slot."""
        ...


class BatchScheduler(Generic[Work]):
    """Runs up to `slots` sequences together on one thread; at most `capacity` wait.

    Between two decode steps it drops cancelled sequences and admits waiting ones into
    free slots, so requests join and leave at token boundaries.
    """

    def __init__(
        self,
        name: str,
        executor: BatchExecutor[Work],
        *,
        slots: int,
        capacity: int,
        retry_after: int,
    ) -> None:
        self.name = name
        self._executor = executor
        self._slots = slots
        self._capacity = capacity
        self._retry_after = retry_after
        self._waiting: collections.deque[tuple[Work, JobContext]] = collections.deque()
        self._active: dict[int, JobContext] = {}
        self._closing = False
        self._stats = SchedulerStats()
        self._outbox = Outbox()
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._serve, name=f"decode-{name}", daemon=True)
        self._thread.start()

    def submit(self, work: Work) -> TokenStream:
        """Queue `work`. Raises QueueFullError when `capacity` requests already wait."""
        context = JobContext(asyncio.get_running_loop(), self._outbox)
        with self._wake:
            if len(self._waiting) >= self._capacity or self._closing:
                raise QueueFullError(self.name, self._retry_after)
            self._waiting.append((work, context))
            self._wake.notify()
        return TokenStream(context)

    def depth(self) -> int:
        """Requests waiting plus running."""
        with self._wake:
            return len(self._waiting) + len(self._active)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stats(self) -> SchedulerStats:
        """The counters, and the queue and slots as they are now (read together)."""
        with self._wake:
            return replace(
                self._stats,
                waiting=len(self._waiting),
                running=len(self._active),
                slots=self._slots,
                busy_slots=frozenset(self._active),
            )

    async def close(self) -> None:
        """Finish running and queued sequences, refuse new ones, then stop the thread."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        await asyncio.to_thread(self._thread.join)

    def _serve(self) -> None:
        while True:
            self._outbox.flush()  # the events of the last pass, before any wait
            with self._wake:
                busy = self._executor.busy()
                while not self._waiting and not self._active and not busy and not self._closing:
                    self._wake.wait()
                if self._closing and not self._waiting and not self._active and not busy:
                    return
                admitted = self._admit(busy)
            for slot, work, context in admitted:
                self._start(slot, work, context)
            self._drop_cancelled()
            settling = len(self._executor.busy())  # released slots finishing their own work
            if not self._active and not settling:
                continue
            with self._wake:
                self._stats = replace(
                    self._stats,
                    steps=self._stats.steps + 1,
                    stepped_sequences=self._stats.stepped_sequences + len(self._active) + settling,
                )
            try:
                finished = self._executor.step()
            except Exception as exc:
                # A failed decode poisons the whole batch: every active sequence gets the error.
                log.exception("decode step failed on %s", self.name)
                for slot in list(self._active):
                    self._finish(slot, _failure(exc))
                self._executor.abandon()
                continue
            for slot in finished:
                self._finish(slot, _END)

    def _admit(self, busy: set[int]) -> list[tuple[int, Work, JobContext]]:
        """Pop waiting work into free slots (lock held); cancelled work ends unstarted."""
        admitted = []
        free = [s for s in range(self._slots) if s not in self._active and s not in busy]
        claimable = set(busy)
        while self._waiting and (free or claimable):
            work, context = self._waiting[0]
            if context.cancelled.is_set():
                self._waiting.popleft()
                context._put(_END)
                continue
            # A busy slot that already holds the start of this work beats a free one.
            slot = self._executor.claim(work, claimable)
            if slot is not None:
                claimable.discard(slot)
            elif free:
                slot = free.pop(0)
            else:
                break
            self._waiting.popleft()
            self._active[slot] = context
            admitted.append((slot, work, context))
            self._stats = replace(
                self._stats,
                admitted=self._stats.admitted + 1,
                queue_wait_seconds=self._stats.queue_wait_seconds
                + time.monotonic()
                - context.submitted,
            )
        return admitted

    def _start(self, slot: int, work: Work, context: JobContext) -> None:
        """Start a sequence; a failure ends only that sequence."""
        try:
            self._executor.start(slot, work, context)
        except Exception as exc:
            log.exception("starting a sequence failed on %s", self.name)
            self._finish(slot, _failure(exc))

    def _drop_cancelled(self) -> None:
        for slot, context in list(self._active.items()):
            if context.cancelled.is_set():
                self._finish(slot, _END)

    def _finish(self, slot: int, last: object) -> None:
        with self._wake:
            context = self._active.pop(slot, None)
        if context is None:
            return
        try:
            self._executor.release(slot)
        finally:
            context._put(last)


def _failure(exc: Exception) -> EngineError:
    return exc if isinstance(exc, EngineError) else EngineError(str(exc))
