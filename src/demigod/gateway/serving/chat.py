"""POST /v1/chat/completions: one model through its chat template, or a consensus."""

from __future__ import annotations

from fastapi import Request

from demigod.gateway.front_door import Ask, ConsensusRoute, FrontDoor, route_header
from demigod.gateway.runner import CompletionRunner, chat_job, expects_next_turn
from demigod.gateway.serving.answer import Answer
from demigod.gateway.serving.consensus import ServingConsensus
from demigod.protocol import ChatCompletionRequest


class ServingChat:
    def __init__(
        self, front: FrontDoor, runner: CompletionRunner, consensus: ServingConsensus
    ) -> None:
        self._front = front
        self._runner = runner
        self._consensus = consensus

    async def create(self, request: Request, body: ChatCompletionRequest) -> Answer:
        """Admit, route and answer `body` (streamed or not). Raises APIError."""
        routed = await self._front.admit(request, Ask.of("chat", request, await request.json()))
        if isinstance(routed.decision, ConsensusRoute):
            return await self._consensus.create(request, body, routed, routed.decision)
        decision = routed.embedded()
        roles = (message.role for message in body.messages)
        job = await chat_job(
            request,
            routed.admission,
            body,
            decision,
            conversation=expects_next_turn(routed.ask.session, roles),
        )
        return Answer(await self._runner.respond(job, request), route_header(decision))
