"""The tokenizer endpoints: POST /tokenize and /detokenize (llama-server's, and the body
shapes vLLM uses), GET /tokenizer_info (vLLM's). Together they let a client tokenize as the
model does, as lm-evaluation-harness' remote tokenizer does for loglikelihood tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace

from fastapi import Request

from demigod.api.errors import APIError
from demigod.gateway.front_door import Ask, FrontDoor
from demigod.gateway.token_reader import check_vocabulary
from demigod.mesh import ServedModel
from demigod.protocol import (
    DetokenizeRequest,
    DetokenizeResponse,
    TokenizeRequest,
    TokenizeResponse,
    TokenizerInfo,
)


class ServingTokenize:
    def __init__(self, front: FrontDoor, embedded: Mapping[str, ServedModel]) -> None:
        self._front = front
        self._embedded = embedded

    async def tokenize(self, request: Request, body: TokenizeRequest) -> TokenizeResponse:
        """Admit and route, then tokenize `body.content`. Raises APIError."""
        served = await self._model(request, body.model, body.content)
        tokens = await asyncio.to_thread(
            served.engine.tokenize, body.content, add_special=body.add_special
        )
        return TokenizeResponse(model=served.name, tokens=tokens)

    async def detokenize(self, request: Request, body: DetokenizeRequest) -> DetokenizeResponse:
        """The text of `body.tokens`. Raises APIError (400 for an id outside the vocabulary)."""
        served = await self._model(request, body.model, "")
        check_vocabulary(body.tokens, served.engine.info.n_vocab, "tokens")
        text = await asyncio.to_thread(served.engine.detokenize, body.tokens)
        return DetokenizeResponse(model=served.name, content=text, prompt=text)

    async def info(self, request: Request, model: str | None) -> TokenizerInfo:
        """The model's special tokens, chat template and context length. Raises APIError."""
        served = await self._model(request, model, "")
        info = served.engine.info
        return TokenizerInfo(
            model=served.name,
            bos_token=info.bos_token or None,
            eos_token=info.eos_token or None,
            chat_template=info.chat_template,
            model_max_length=info.n_ctx,
        )

    async def _model(self, request: Request, name: str | None, text: str) -> ServedModel:
        """Admit and route to model `name`: by default the default model, or the one
        model served."""
        name = name or self._front.implicit_model()
        if name is None:
            raise APIError(400, "model: required when several models are served", param="model")
        ask = replace(Ask.of("tokenize", request, {}), model=name, text=text)
        return (await self._front.admit(request, ask)).embedded().model
