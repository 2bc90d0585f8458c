"""POST /tokenize (llama-server's): token ids of a text as a model sees them."""

from __future__ import annotations

import asyncio

from fastapi import Request

from demigod.gateway.front_door import Ask, FrontDoor
from demigod.protocol import TokenizeRequest, TokenizeResponse


class ServingTokenize:
    def __init__(self, front: FrontDoor) -> None:
        self._front = front

    async def tokenize(self, request: Request, body: TokenizeRequest) -> TokenizeResponse:
        """Admit and route, then tokenize `body.content`. Raises APIError."""
        routed = await self._front.admit(request, Ask.of("tokenize", request, await request.json()))
        served = routed.embedded().model
        tokens = await asyncio.to_thread(
            served.engine.tokenize, body.content, add_special=body.add_special
        )
        return TokenizeResponse(model=served.name, tokens=tokens)
