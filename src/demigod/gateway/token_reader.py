"""How the routed model reads token ids as text: what the screens read of a prompt sent as
token ids (lm-evaluation-harness' remote tokenizer sends them), before any generation.

Token ids mean something only to one vocabulary, so the model the request was routed to
reads them: an embedded model with its engine's detokenizer, a remote one through its
replicas' `POST /detokenize` (`demigod worker`, llama-server and vLLM serve it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import aiohttp
import orjson

from demigod.api.errors import APIError
from demigod.gateway.balancer import Replica, choose
from demigod.gateway.front_door import Target
from demigod.gateway.upstreams import RemoteModel, Upstreams
from demigod.mesh import ServedModel


def check_vocabulary(tokens: Sequence[int], n_vocab: int, param: str) -> None:
    """Raises APIError 400 naming `param` for an id outside 0..n_vocab-1."""
    if bad := [token for token in tokens if not 0 <= token < n_vocab]:
        raise APIError(
            400,
            f"{param}: token id {bad[0]} is outside the vocabulary (0..{n_vocab - 1})",
            param=param,
        )


class TokenReader:
    """Reads token ids as the model they were routed to does."""

    def __init__(self, upstreams: Upstreams | None) -> None:
        self._upstreams = upstreams

    async def read(self, model: Target, tokens: Sequence[int]) -> str:
        """The text of `tokens` as `model` reads them. Raises APIError: 400 for ids the
        model cannot read, 503 when no replica of a remote model answers."""
        if isinstance(model, ServedModel):
            check_vocabulary(tokens, model.engine.info.n_vocab, "prompt")
            return await asyncio.to_thread(model.engine.detokenize, list(tokens))
        if self._upstreams is None:  # a RemoteModel exists only with upstreams
            raise TypeError("a remote model without upstreams")
        return await self._remote(self._upstreams, model, tokens)

    async def _remote(self, upstreams: Upstreams, model: RemoteModel, tokens: Sequence[int]) -> str:
        body = orjson.dumps({"model": model.served_name, "tokens": list(tokens)})
        headers = {"content-type": "application/json"}
        if model.api_key:
            headers["authorization"] = f"Bearer {model.api_key}"
        tried: list[Replica] = []
        for _ in range(upstreams.settings.max_attempts):
            replica = choose(model.replicas, time.monotonic(), exclude=tried)
            if replica is None:
                break
            tried.append(replica)
            try:
                response = await upstreams.client.post(f"{replica.url}/detokenize", body, headers)
                try:
                    status, answer = response.status, await response.read()
                finally:
                    response.release()
            except (aiohttp.ClientError, TimeoutError):
                continue  # the forwarding path marks replicas down; here: the next one
            if status >= 500:
                continue
            if status != 200:
                raise APIError(
                    400,
                    f"prompt: model {model.name!r} cannot read these token ids (its "
                    f"upstream's /detokenize answered {status}: {_message(answer)})",
                    param="prompt",
                )
            return _text(answer)
        raise APIError(
            503,
            f"no replica of model {model.name!r} could read the prompt's token ids now",
            type="server_error",
            code="no_healthy_upstream",
            headers={"Retry-After": str(upstreams.settings.retry_after_seconds)},
        )


def _text(answer: bytes) -> str:
    """llama-server's `content`, or vLLM's `prompt`. Raises APIError 502 for neither."""
    try:
        found = orjson.loads(answer)
    except orjson.JSONDecodeError:
        found = None
    text = found.get("content", found.get("prompt")) if isinstance(found, dict) else None
    if not isinstance(text, str):
        raise APIError(502, "the upstream's /detokenize answered without text", type="server_error")
    return text


def _message(answer: bytes) -> str:
    """The upstream's error message, else its first bytes."""
    try:
        error = orjson.loads(answer).get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (orjson.JSONDecodeError, AttributeError):
        message = None
    return message if isinstance(message, str) else answer[:200].decode("utf-8", "replace")
