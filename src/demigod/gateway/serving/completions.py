"""POST /v1/completions: a prompt (text or token ids) through one model."""

from __future__ import annotations

import asyncio

from fastapi import Request

from demigod.gateway.front_door import Ask, FrontDoor, route_header
from demigod.gateway.output_plan import completion_plan
from demigod.gateway.runner import CompletionRunner, completion_job, expects_next_turn
from demigod.gateway.serving.answer import Answer
from demigod.gateway.token_reader import check_vocabulary
from demigod.protocol import CompletionRequest


class ServingCompletions:
    def __init__(self, front: FrontDoor, runner: CompletionRunner) -> None:
        self._front = front
        self._runner = runner

    async def create(self, request: Request, body: CompletionRequest) -> Answer:
        """Admit, route and answer `body` (streamed or not). Raises APIError."""
        routed = await self._front.admit(request, Ask.of("text", request, await request.json()))
        decision = routed.embedded()
        engine = decision.model.engine
        prompt = body.single_prompt()
        if isinstance(prompt, str):
            text = prompt
            tokens = await asyncio.to_thread(engine.tokenize, text, add_special=True)
        else:  # token ids, used as given (no BOS added), as OpenAI does
            check_vocabulary(prompt, engine.info.n_vocab, "prompt")
            tokens = prompt
            text = await asyncio.to_thread(engine.detokenize, tokens) if body.echo else ""
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
            plan=completion_plan(body, engine.info),
        )
        return Answer(await self._runner.respond(job, request), route_header(decision))
