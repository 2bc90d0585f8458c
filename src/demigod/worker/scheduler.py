"""A bounded request queue served by one decode thread, bridged to asyncio.

This is the seam for continuous batching: an engine hands the scheduler a blocking job
(decode one request) and gets back an async stream of events. A batching scheduler will
take many jobs per step instead of one at a time; engines and the gateway stay as they are.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from demigod.engines.base import EngineError, GenerationEvent, QueueFullError

log = logging.getLogger(__name__)

_END = object()


class JobContext:
    """Handed to a running job: emit events, and stop when `cancelled` is set."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._events: asyncio.Queue[Any] = asyncio.Queue()
        self.cancelled = threading.Event()

    def emit(self, event: GenerationEvent) -> None:
        self._put(event)

    def _put(self, item: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, item)
        except RuntimeError:  # the loop is gone (shutdown): nobody is listening
            self.cancelled.set()


class TokenStream:
    """The async side of a job. Close it (or leave `async with`) to cancel the job."""

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


Job = Callable[[JobContext], None]


class SerialScheduler:
    """Runs jobs one at a time on a dedicated thread; at most `capacity` wait."""

    def __init__(self, name: str, capacity: int, retry_after: int) -> None:
        self.name = name
        self._capacity = capacity
        self._retry_after = retry_after
        self._jobs: queue.Queue[tuple[Job, JobContext] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._waiting = 0
        self._running = 0
        self._thread = threading.Thread(target=self._serve, name=f"decode-{name}", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> TokenStream:
        """Queue `job`. Raises QueueFullError when `capacity` jobs already wait."""
        with self._lock:
            if self._waiting >= self._capacity:
                raise QueueFullError(self.name, self._retry_after)
            self._waiting += 1
        context = JobContext(asyncio.get_running_loop())
        self._jobs.put((job, context))
        return TokenStream(context)

    def depth(self) -> int:
        """Jobs waiting plus running."""
        with self._lock:
            return self._waiting + self._running

    def alive(self) -> bool:
        return self._thread.is_alive()

    async def close(self) -> None:
        """Let the running job finish, drop none of the queued ones, then stop the thread."""
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)

    def _serve(self) -> None:
        while (item := self._jobs.get()) is not None:
            job, context = item
            with self._lock:
                self._waiting -= 1
                self._running += 1
            try:
                if not context.cancelled.is_set():
                    job(context)
                context._put(_END)
            except Exception as exc:
                log.exception("job failed on %s", self.name)
                failure = exc if isinstance(exc, EngineError) else EngineError(str(exc))
                context._put(failure)
            finally:
                with self._lock:
                    self._running -= 1
