"""Chat answered by several models at once: ask each member (and the judge) through the
runner, then vote (the pure part: demigod.gateway.consensus)."""

from __future__ import annotations

from fastapi import Request

from demigod.api.errors import APIError
from demigod.gateway import consensus
from demigod.gateway.front_door import ConsensusRoute, FrontDoor, Routed
from demigod.gateway.runner import CompletionRunner, chat_job
from demigod.gateway.serving.answer import Answer
from demigod.protocol import ChatCompletion, ChatCompletionRequest, ChatMessage

# What the judge may write: the number of the answer it picks.
JUDGE_MAX_TOKENS = 16


class ServingConsensus:
    def __init__(self, front: FrontDoor, runner: CompletionRunner) -> None:
        self._front = front
        self._runner = runner

    async def create(
        self, request: Request, body: ChatCompletionRequest, routed: Routed, route: ConsensusRoute
    ) -> Answer:
        """Ask every member concurrently and answer with the winner. Raises APIError: 400
        for a streamed request, 502 (consensus_not_reached) without a winner."""
        if body.stream:
            raise APIError(400, "consensus answers are not streamed", param="stream")
        # The vote compares one text per member: what would make several, or none, is refused.
        for param, asked in (
            ("n", body.n > 1),
            ("tools", bool(body.tools)),
            ("logprobs", body.logprobs),
        ):
            if asked:
                raise APIError(400, f"{param}: consensus answers one message of text", param=param)

        async def ask(name: str, judge_prompt: str | None) -> consensus.MemberReply:
            asked = body.model_copy(update={"model": name})
            if judge_prompt is not None:
                messages = [ChatMessage(role="user", content=judge_prompt)]
                asked = asked.model_copy(
                    update={
                        "messages": messages,
                        "max_tokens": JUDGE_MAX_TOKENS,
                        "temperature": 0.0,
                    }
                )
            decision = self._front.member(request, routed, name)
            job = await chat_job(request, routed.admission, asked, decision)
            reply = await self._runner.respond(job, request)
            if not isinstance(reply, ChatCompletion):
                raise ConnectionAbortedError("the client went away")
            return consensus.MemberReply(
                consensus.Answer(name, reply.choices[0].message.content),
                decision.model.version,
                reply.usage.prompt_tokens,
                reply.usage.completion_tokens,
            )

        completion = await consensus.answer(route.target, routed.ask.text, ask)
        header = consensus.route_header(completion.demigod_consensus, route.target.label)
        return Answer(completion, header)
