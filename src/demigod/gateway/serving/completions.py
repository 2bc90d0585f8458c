"""POST /v1/completions: a text prompt through one model."""

from __future__ import annotations

import asyncio

from fastapi import Request

from demigod.gateway.front_door import Ask, FrontDoor, route_header
from demigod.gateway.runner import CompletionRunner, completion_job, expects_next_turn
from demigod.gateway.serving.answer import Answer
from demigod.protocol import CompletionRequest


class ServingCompletions:
    def __init__(self, front: FrontDoor, runner: CompletionRunner) -> None:
        self._front = front
        self._runner = runner

    async def create(self, request: Request, body: CompletionRequest) -> Answer:
        """Admit, route and answer `body` (streamed or not). Raises APIError."""
        routed = await self._front.admit(request, Ask.of("text", request, await request.json()))
        decision = routed.embedded()
        text = body.prompt_text()
        tokens = await asyncio.to_thread(decision.model.engine.tokenize, text, add_special=True)
        job = completion_job(
            request,
            routed.admission,
            body,
            "text",
            decision,
            tokens,
            prompt_text=text,
            echo=body.echo,
            conversation=expects_next_turn(routed.ask.session),
        )
        return Answer(await self._runner.respond(job, request), route_header(decision))
