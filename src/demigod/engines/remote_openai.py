"""The remote engine: an OpenAI-compatible HTTP endpoint reached through one pooled client.

Where the llama.cpp engine takes token ids and yields tokens (the `Engine` protocol), a
remote endpoint (a `demigod worker`, vLLM, llama-server, TGI, Ollama, trtllm-serve)
already speaks the OpenAI protocol, chat template and tokenizer included. So the gateway
does not re-tokenise for it: it forwards the client's request body and relays the
response bytes (docs/gateway.md explains the split). This module owns the HTTP side:
one aiohttp session per process with a keep-alive pool shared by every replica.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp


class RemoteOpenAI:
    """Pooled HTTP/1.1 client for OpenAI-compatible upstreams. `start()` inside the event
    loop that will use it; `close()` at shutdown."""

    def __init__(
        self,
        *,
        max_connections: int,
        connect_timeout: float,
        request_timeout: float,
        health_timeout: float,
    ) -> None:
        self._max_connections = max_connections
        self._request_timeout = aiohttp.ClientTimeout(
            total=request_timeout, sock_connect=connect_timeout
        )
        self._health_timeout = aiohttp.ClientTimeout(total=health_timeout)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, limit_per_host=0, ttl_dns_cache=60
        )
        # No cookie jar, no automatic decompression: bytes pass through untouched.
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("RemoteOpenAI.start() was not called")
        return self._session

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> aiohttp.ClientResponse:
        """POST `body` to `url`; returns once the status line and headers arrived.

        Raises aiohttp.ClientError (connect refused, connection reset) or TimeoutError."""
        return await self.session.post(
            url, data=body, headers=headers, timeout=self._request_timeout
        )

    async def get(self, url: str, headers: Mapping[str, str]) -> aiohttp.ClientResponse:
        """GET `url`; returns once the status line and headers arrived. Raises as `post`."""
        return await self.session.get(url, headers=headers, timeout=self._request_timeout)

    async def ready(self, url: str) -> bool:
        """GET `url` (a health path) answered 200 in time."""
        try:
            async with self.session.get(url, timeout=self._health_timeout) as response:
                await response.read()
                return response.status == 200
        except (TimeoutError, aiohttp.ClientError, OSError):
            return False

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
