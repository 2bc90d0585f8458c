"""Turning one OpenAI request into an engine generation, and the generation into the
protocol's typed answer: a `ChatCompletion` / `Completion`, or a `CompletionStream` of SSE
lines. The routes (gateway.routes) turn those into HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from typing import Literal

from fastapi import Request
from opentelemetry.context import Context
from opentelemetry.trace import StatusCode
from pydantic import BaseModel

from demigod.api.admission import Admission
from demigod.api.errors import APIError
from demigod.api.principal import ANONYMOUS_TENANT
from demigod.engines.base import (
    ContextOverflowError,
    EngineError,
    GenerationEvent,
    GenerationRequest,
    GenerationStream,
    InvalidGrammarError,
    QueueFullError,
    SamplingParams,
    UnsupportedFeatureError,
)
from demigod.engines.chat_template import ChatTemplateError
from demigod.gateway.choices import ChoiceBuilder
from demigod.gateway.output_plan import OutputPlan, chat_plan
from demigod.mesh import ServedModel
from demigod.observability.energy import EnergyMeter
from demigod.observability.metrics import Metrics
from demigod.observability.tracing import (
    Tracing,
    incoming_context,
    trace_ids,
    wall_clock_ns,
)
from demigod.protocol import (
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Completion,
    CompletionChoice,
    CompletionFields,
    ErrorBody,
    ErrorResponse,
    Usage,
    new_id,
    now,
)
from demigod.routing.policy import RouteDecision

log = logging.getLogger(__name__)

Kind = Literal["chat", "text"]
# gen_ai.operation.name of each kind (OpenTelemetry GenAI semantic conventions).
_OPERATION: dict[Kind, str] = {"chat": "chat", "text": "text_completion"}
# How many events pass between checks that a non-streaming client is still connected.
DISCONNECT_CHECK_EVERY = 16
# OpenAI's legacy completions endpoint defaults to 16 tokens; chat runs to the context end.
TEXT_DEFAULT_MAX_TOKENS = 16


@dataclass
class CompletionJob:
    """Everything needed to answer one completion request."""

    kind: Kind
    model: ServedModel
    prompt_tokens: list[int]
    sampling: SamplingParams
    stream: bool
    include_usage: bool
    request_id: str
    received: float
    echo_text: str = ""
    prompt_text: str = ""  # logged only with observability.log_content
    category: str | None = None  # what the routing policy classified the request as
    route_reason: str = ""  # why the policy picked this model
    tenant: str = ANONYMOUS_TENANT  # the authenticated principal's tenant
    on_usage: Callable[[int, int], None] | None = None  # (prompt, completion) tokens at the end
    conversation: bool = False  # a next turn is likely: see `expects_next_turn`
    plan: OutputPlan = field(default_factory=OutputPlan)  # grammar, logprobs, tool calls
    choices: int = 1  # `n`: each choice is its own sequence in the engine's batch


@dataclass(frozen=True)
class CompletionStream:
    """A streamed answer: OpenAI's SSE lines (`data: {...}`), ending `data: [DONE]`."""

    lines: AsyncIterator[str]


@dataclass(frozen=True)
class ClientGone:
    """The client disconnected before a non-streamed answer was complete (status 499)."""


Generated = ChatCompletion | Completion | CompletionStream | ClientGone


def expects_next_turn(session: str | None, roles: Iterable[str] = ()) -> bool:
    """Whether a request is part of a conversation, so that the engine prepares the next
    turn's state after answering (speculative work, worth it only then): it names a session
    (`X-Session-Id` or `user`), or it is a chat that already holds an assistant reply."""
    return session is not None or "assistant" in roles


def default_max_tokens(kind: Kind, prompt_tokens: int, n_ctx: int) -> int:
    return TEXT_DEFAULT_MAX_TOKENS if kind == "text" else max(1, n_ctx - prompt_tokens)


def sampling_params(
    body: CompletionFields,
    kind: Kind,
    prompt_tokens: int,
    n_ctx: int,
    stops: tuple[str, ...],
    plan: OutputPlan,
) -> SamplingParams:
    """The engine's sampling parameters for `body`; `stops` are added to the body's own
    (a chat template's end-of-turn strings); `plan` adds the grammar and logprobs."""
    return SamplingParams(
        max_tokens=body.token_limit or default_max_tokens(kind, prompt_tokens, n_ctx),
        temperature=body.temperature,
        top_p=body.top_p,
        seed=body.seed,
        stop=tuple(body.stop_sequences) + stops,
        ignore_eos=body.ignore_eos,
        grammar=plan.grammar,
        logprobs=plan.logprobs,
        special_text=plan.reads_tool_calls,
    )


def choice_sampling(sampling: SamplingParams, choice: int) -> SamplingParams:
    """Choice `choice`'s parameters: its own seed (seed + choice), so that `n` seeded
    choices differ from each other and each is reproducible."""
    if choice == 0 or sampling.seed is None:
        return sampling
    return replace(sampling, seed=(sampling.seed + choice) % 2**32)


async def chat_job(
    request: Request,
    admission: Admission,
    body: ChatCompletionRequest,
    decision: RouteDecision[ServedModel],
    *,
    conversation: bool = False,
) -> CompletionJob:
    """The job of an admitted, routed chat request: its messages through the model's chat
    template, tokenized off the event loop. Raises APIError (400) when the template
    rejects the messages or the prompt is empty."""
    served = decision.model
    plan = chat_plan(body, served.chat_template, served.engine.info)
    try:
        prompt = served.chat_template.render(body.messages, plan.tools)
    except ChatTemplateError as exc:
        raise APIError(400, str(exc), param="messages") from exc
    tokens = await asyncio.to_thread(
        served.engine.tokenize, prompt, add_special=True, parse_special=True
    )
    return completion_job(
        request,
        admission,
        body,
        "chat",
        decision,
        tokens,
        stops=served.chat_template.stops,
        prompt_text=prompt,
        conversation=conversation,
        plan=plan,
    )


def completion_job(
    request: Request,
    admission: Admission,
    body: CompletionFields,
    kind: Kind,
    decision: RouteDecision[ServedModel],
    tokens: list[int],
    *,
    stops: tuple[str, ...] = (),
    prompt_text: str = "",
    echo: bool = False,
    conversation: bool = False,
    plan: OutputPlan | None = None,
) -> CompletionJob:
    """The job of an admitted, routed request whose prompt is `tokens`. Raises APIError
    (400) for an empty prompt."""
    if not tokens:
        raise APIError(400, "the prompt is empty", param="prompt" if kind == "text" else "messages")
    served = decision.model
    plan = plan or OutputPlan()
    return CompletionJob(
        kind=kind,
        model=served,
        prompt_tokens=tokens,
        sampling=sampling_params(body, kind, len(tokens), served.engine.info.n_ctx, stops, plan),
        stream=body.stream,
        include_usage=bool(body.stream_options and body.stream_options.include_usage),
        request_id=request.state.request_id,
        received=request.state.received,
        echo_text=prompt_text if echo else "",
        prompt_text=prompt_text,
        category=decision.category,
        route_reason=decision.reason,
        tenant=admission.principal.tenant,
        on_usage=admission.record_usage,
        # A conversation goes on with one choice: settling n of them would be wasted work.
        conversation=conversation and body.n == 1,
        plan=plan,
        choices=body.n,
    )


class CompletionRunner:
    def __init__(
        self, metrics: Metrics, energy: EnergyMeter, tracing: Tracing, *, log_content: bool
    ) -> None:
        self._metrics = metrics
        self._energy = energy
        self._tracing = tracing
        self._log_content = log_content

    async def respond(self, job: CompletionJob, request: Request) -> Generated:
        """Start the generation: the whole answer, or a stream of it when `job.stream`.
        Raises APIError for refusals (context overflow 400, a field the engine refuses
        400, queue full 503) and failures."""
        streams: list[GenerationStream] = []
        try:
            for choice in range(job.choices):
                streams.append(
                    job.model.engine.generate(
                        GenerationRequest(
                            job.prompt_tokens,
                            choice_sampling(job.sampling, choice),
                            job.request_id,
                            job.conversation,
                            prompt_logprobs=job.plan.prompt_logprobs,
                        )
                    )
                )
        except BaseException as exc:
            for started in streams:  # the choices already queued give their slots back
                await started.aclose()
            raise _refusal(exc, job) from exc
        recorder = _Recorder(
            self._metrics,
            self._energy,
            self._tracing,
            job,
            incoming_context(request.headers),
            log_content=self._log_content,
        )
        builders = [
            ChoiceBuilder(index, job.plan, echo_text=job.echo_text) for index in range(job.choices)
        ]
        if job.stream:
            return CompletionStream(self._stream(job, streams, builders, recorder))
        return await self._collect(job, streams, builders, request, recorder)

    async def _collect(
        self,
        job: CompletionJob,
        streams: list[GenerationStream],
        builders: list[ChoiceBuilder],
        request: Request,
        recorder: _Recorder,
    ) -> ChatCompletion | Completion | ClientGone:
        try:
            async with AsyncExitStack() as closing:
                for stream in streams:
                    await closing.enter_async_context(stream)
                count = 0
                async for index, event in _merged(streams):
                    recorder.token(index, event)
                    builders[index].add(event)
                    count += 1
                    if count % DISCONNECT_CHECK_EVERY == 1 and await request.is_disconnected():
                        recorder.finish(499, error_type="client_disconnected")
                        return ClientGone()
        except EngineError as exc:
            recorder.finish(500, error_type="server_error")
            raise APIError(500, str(exc), type="server_error") from exc
        usage = Usage.of(len(job.prompt_tokens), recorder.completion_tokens)
        body: ChatCompletion | Completion
        if job.kind == "chat":
            body = ChatCompletion(
                model=job.model.name,
                choices=[builder.chat_choice() for builder in builders],
                usage=usage,
            )
        else:
            body = Completion(
                model=job.model.name,
                choices=[builder.completion_choice() for builder in builders],
                usage=usage,
            )
        recorder.finish(200, usage)
        return body

    async def _stream(
        self,
        job: CompletionJob,
        streams: list[GenerationStream],
        builders: list[ChoiceBuilder],
        recorder: _Recorder,
    ) -> AsyncIterator[str]:
        chunks = _ChunkWriter(job)
        status = 499  # until the stream completes, a stop means the client went away
        error_type: str | None = "client_disconnected"
        try:
            if job.kind == "chat":
                for builder in builders:
                    yield chunks.chat(builder.chat_opening())
            async with AsyncExitStack() as closing:
                for stream in streams:
                    await closing.enter_async_context(stream)
                async for index, event in _merged(streams):
                    recorder.token(index, event)
                    builder = builders[index]
                    if job.kind == "chat":
                        if (chat_piece := builder.chat_piece(event)) is not None:
                            yield chunks.chat(chat_piece)
                    elif (text_piece := builder.text_piece(event)) is not None:
                        yield chunks.text(text_piece)
            usage = Usage.of(len(job.prompt_tokens), recorder.completion_tokens)
            if job.include_usage:
                yield chunks.usage(usage)
            yield "data: [DONE]\n\n"
            status, error_type = 200, None
            recorder.usage = usage
        except EngineError as exc:
            status, error_type = 500, "server_error"
            log.error("generation failed mid-stream", extra={"error": str(exc)})
            error = ErrorResponse(error=ErrorBody(message=str(exc), type="server_error"))
            yield f"data: {error.model_dump_json()}\n\n"
            yield "data: [DONE]\n\n"
        finally:
            recorder.finish(status, recorder.usage, error_type=error_type)


def _refusal(exc: BaseException, job: CompletionJob) -> BaseException:
    """The client's error for an engine's refusal to start a generation."""
    if isinstance(exc, ContextOverflowError):
        return APIError(
            400,
            str(exc),
            param="messages" if exc.prompt_tokens >= exc.n_ctx else "max_tokens",
            code="context_length_exceeded",
        )
    if isinstance(exc, QueueFullError):
        return APIError(
            503,
            str(exc),
            type="server_overloaded",
            code="queue_full",
            headers={"Retry-After": str(exc.retry_after)},
        )
    if isinstance(exc, InvalidGrammarError | UnsupportedFeatureError):
        param = job.plan.grammar_field or None
        return APIError(400, f"{param}: {exc}" if param else str(exc), param=param)
    return exc


async def _merged(
    streams: list[GenerationStream],
) -> AsyncIterator[tuple[int, GenerationEvent]]:
    """The events of every choice's stream as they come, each with its choice's index.
    One stream is read directly; several are read by one task each."""
    if len(streams) == 1:
        async for event in streams[0]:
            yield 0, event
        return
    queue: asyncio.Queue[tuple[int, GenerationEvent | BaseException | None]] = asyncio.Queue()

    async def pump(index: int, stream: GenerationStream) -> None:
        try:
            async for event in stream:
                await queue.put((index, event))
        except Exception as exc:  # handed to the reader, which raises it
            await queue.put((index, exc))
        finally:
            await queue.put((index, None))

    tasks = [asyncio.create_task(pump(index, stream)) for index, stream in enumerate(streams)]
    try:
        running = len(tasks)
        while running:
            index, item = await queue.get()
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield index, item
    finally:
        for task in tasks:
            task.cancel()


class _ChunkWriter:
    """SSE lines in the shape of OpenAI's streaming chunks."""

    def __init__(self, job: CompletionJob) -> None:
        self._job = job
        self._id = new_id("chatcmpl" if job.kind == "chat" else "cmpl")
        self._created = now()

    def chat(self, choice: ChatChunkChoice) -> str:
        return _sse(
            ChatCompletionChunk(
                id=self._id, created=self._created, model=self._job.model.name, choices=[choice]
            )
        )

    def text(self, choice: CompletionChoice) -> str:
        return _sse(
            Completion(
                id=self._id, created=self._created, model=self._job.model.name, choices=[choice]
            )
        )

    def usage(self, usage: Usage) -> str:
        if self._job.kind == "chat":
            chunk: BaseModel = ChatCompletionChunk(
                id=self._id,
                created=self._created,
                model=self._job.model.name,
                choices=[],
                usage=usage,
            )
        else:
            chunk = Completion(
                id=self._id,
                created=self._created,
                model=self._job.model.name,
                choices=[],
                usage=usage,
            )
        return _sse(chunk)


def _sse(chunk: BaseModel) -> str:
    return f"data: {json.dumps(chunk.model_dump(exclude_none=True), separators=(',', ':'))}\n\n"


class _Recorder:
    """Metrics, trace span and access log line of one admitted request, from admission to
    `finish` (log keys and span attributes: docs/operations.md)."""

    def __init__(
        self,
        metrics: Metrics,
        energy: EnergyMeter,
        tracing: Tracing,
        job: CompletionJob,
        parent: Context,
        *,
        log_content: bool,
    ) -> None:
        self._metrics = metrics
        # Only with log_content: the text generated, for the log line.
        self._completion: list[str] | None = [] if log_content else None
        self._energy = energy
        self._job = job
        self._first_token_at: float | None = None
        self._last_token_at: float | None = None
        self._finish_reason: str | None = None
        self.completion_tokens = 0  # of every choice
        self._choice_tokens = [0] * job.choices
        self.usage: Usage | None = None
        self._finished = False
        metrics.inflight.labels(job.model.name).inc()
        energy.begin(job.model.name)
        sampling = job.sampling
        attributes: dict[str, str | int | float | bool] = {
            "gen_ai.operation.name": _OPERATION[job.kind],
            "gen_ai.provider.name": "demigod",
            "gen_ai.request.model": job.model.name,
            "gen_ai.request.max_tokens": sampling.max_tokens,
            "gen_ai.request.temperature": sampling.temperature,
            "gen_ai.request.top_p": sampling.top_p,
            "demigod.request_id": job.request_id,
            "demigod.tenant": job.tenant,
            "demigod.model.version": job.model.version,
            "demigod.stream": job.stream,
            "demigod.route.category": job.category or "none",
            "demigod.route.reason": job.route_reason,
        }
        if sampling.seed is not None:
            attributes["gen_ai.request.seed"] = sampling.seed
        self._span = tracing.start_completion(
            operation=_OPERATION[job.kind],
            model=job.model.name,
            started_ns=wall_clock_ns(job.received),
            parent=parent,
            attributes=attributes,
        )

    def token(self, choice: int, event: GenerationEvent) -> None:
        """An event of choice `choice`'s sequence."""
        stamp = time.perf_counter()
        if self._first_token_at is None and event.completion_tokens > 0:
            self._first_token_at = stamp
            self._metrics.time_to_first_token.labels(self._job.model.name).observe(
                stamp - self._job.received
            )
        self._last_token_at = stamp
        self._choice_tokens[choice] = event.completion_tokens
        self.completion_tokens = sum(self._choice_tokens)
        self._finish_reason = event.finish_reason or self._finish_reason
        if self._completion is not None:
            self._completion.append(event.text)

    def finish(
        self, status: int, usage: Usage | None = None, *, error_type: str | None = None
    ) -> None:
        if self._finished:
            return
        self._finished = True
        job, metrics, model = self._job, self._metrics, self._job.model.name
        elapsed = time.perf_counter() - job.received
        metrics.inflight.labels(model).dec()
        self._energy.end(model)
        metrics.requests.labels(model, job.model.version, job.tenant, str(status)).inc()
        metrics.request_duration.labels(model, job.tenant).observe(elapsed)
        metrics.version_request_duration.labels(model, job.model.version).observe(elapsed)
        metrics.tokens.labels(model, job.tenant, "input").inc(len(job.prompt_tokens))
        metrics.tokens.labels(model, job.tenant, "output").inc(self.completion_tokens)
        if job.on_usage is not None:
            job.on_usage(len(job.prompt_tokens), self.completion_tokens)
        if (
            self._first_token_at is not None
            and self._last_token_at is not None
            and (longest := max(self._choice_tokens)) > 1
        ):
            # The choices decode side by side: a token's time is that of one sequence's.
            per_token = (self._last_token_at - self._first_token_at) / (longest - 1)
            metrics.time_per_output_token.labels(model).observe(per_token)
        self._end_span(status, error_type)
        trace_id, span_id = trace_ids(self._span)
        content = (
            {}
            if self._completion is None
            else {"prompt": job.prompt_text, "completion": "".join(self._completion)}
        )
        log.info(
            "completion",
            extra={
                **content,
                "request_id": job.request_id,
                "tenant": job.tenant,
                "model": model,
                "version": job.model.version,
                "kind": job.kind,
                "stream": job.stream,
                "category": job.category,
                "route_reason": job.route_reason,
                "status": status,
                "error_type": error_type,
                "prompt_tokens": len(job.prompt_tokens),
                "completion_tokens": self.completion_tokens,
                "ttft_seconds": (
                    None
                    if self._first_token_at is None
                    else round(self._first_token_at - job.received, 4)
                ),
                "latency_seconds": round(elapsed, 4),
                "trace_id": trace_id,
                "span_id": span_id,
            },
        )

    def _end_span(self, status: int, error_type: str | None) -> None:
        span = self._span
        span.set_attribute("gen_ai.response.model", self._job.model.name)
        span.set_attribute("gen_ai.usage.input_tokens", len(self._job.prompt_tokens))
        span.set_attribute("gen_ai.usage.output_tokens", self.completion_tokens)
        if self._finish_reason is not None:
            span.set_attribute("gen_ai.response.finish_reasons", [self._finish_reason])
        span.set_attribute("http.response.status_code", status)
        if error_type is not None:
            span.set_attribute("error.type", error_type)
        if status >= 500:
            span.set_status(StatusCode.ERROR, error_type)
        span.end()
