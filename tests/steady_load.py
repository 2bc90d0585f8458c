"""Steady load through a gateway: clients posting one request after another until stopped,
recording each status and which replica (`x-demigod-replica`) served each success."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

import httpx


class SteadyLoad:
    """`with SteadyLoad(url, body, clients=3) as load:` runs until the block ends."""

    def __init__(self, url: str, body: dict[str, Any], *, clients: int = 3) -> None:
        self.url, self.body, self.clients = url, body, clients
        self.statuses: list[int] = []
        self.served_by: list[tuple[float, str]] = []  # (monotonic time, replica URL)
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=clients)
        self._loaders: list[Future[None]] = []

    def _client(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                reply = client.post(self.url, json=self.body)
                self.statuses.append(reply.status_code)
                if reply.status_code == 200:
                    self.served_by.append((time.monotonic(), reply.headers["x-demigod-replica"]))

    def replicas_since(self, moment: float) -> set[str]:
        """Replicas that answered a request after `moment` (time.monotonic())."""
        return {url for t, url in self.served_by if t > moment}

    def wait_for_replica(self, replica: str, since: float, timeout: float) -> float:
        """Until `replica` answers a request after `since`; returns when. AssertionError
        after `timeout` seconds."""
        while replica not in self.replicas_since(since):
            assert time.monotonic() - since < timeout, f"no traffic to {replica} in {timeout}s"
            time.sleep(0.1)
        return min(t for t, url in self.served_by if url == replica and t > since)

    def __enter__(self) -> SteadyLoad:
        self._loaders = [self._pool.submit(self._client) for _ in range(self.clients)]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        for loader in self._loaders:
            loader.result(timeout=60)
        self._pool.shutdown()
