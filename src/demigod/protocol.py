"""The OpenAI-compatible wire format, in one place, shared by server and client code.

Requests reject unknown types and out-of-range values with a message that names the
field; fields OpenAI defines that the mesh does not act on are accepted and ignored so
that standard SDKs keep working.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

MAX_STOP_SEQUENCES = 4
MAX_STOP_LENGTH = 256

FinishReason = Literal["stop", "length"]


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


class StreamOptions(BaseModel):
    include_usage: StrictBool = False


class CompletionFields(BaseModel):
    """Fields common to chat and text completions, with OpenAI's ranges."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=256)
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 1.0
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = None
    stop: str | list[str] | None = None
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    n: Annotated[int, Field(ge=1, le=1)] = 1
    user: str | None = None
    ignore_eos: StrictBool = Field(
        default=False, description="extension (as llama-server): keep generating past EOS"
    )

    @field_validator("stop")
    @classmethod
    def _bounded_stop(cls, value: str | list[str] | None) -> list[str]:
        stops = [value] if isinstance(value, str) else list(value or [])
        if len(stops) > MAX_STOP_SEQUENCES:
            raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences")
        if any(not stop or len(stop) > MAX_STOP_LENGTH for stop in stops):
            raise ValueError(f"stop sequences must be 1..{MAX_STOP_LENGTH} characters")
        return stops

    @property
    def stop_sequences(self) -> list[str]:
        return list(self.stop or [])


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None

    def text(self) -> str:
        """The message's text; content parts other than text are rejected upstream."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.get("text", "") for part in self.content)

    @field_validator("content")
    @classmethod
    def _text_parts_only(
        cls, value: str | list[dict[str, Any]] | None
    ) -> str | list[dict[str, Any]] | None:
        if isinstance(value, list):
            for part in value:
                if part.get("type") != "text" or not isinstance(part.get("text"), str):
                    raise ValueError("only text content parts are supported")
        return value


class ChatCompletionRequest(CompletionFields):
    messages: list[ChatMessage] = Field(min_length=1)


class CompletionRequest(CompletionFields):
    prompt: str | list[str] = Field(description="one prompt; a list must hold exactly one")
    echo: StrictBool = False

    @field_validator("prompt")
    @classmethod
    def _single_prompt(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and len(value) != 1:
            raise ValueError("exactly one prompt per request (n=1)")
        return value

    def prompt_text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int) -> Usage:
        return cls(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str = Field(default_factory=lambda: new_id("chatcmpl"))
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=now)
    model: str
    choices: list[ChatChoice]
    usage: Usage
    system_fingerprint: str | None = None


class ConsensusAnswer(BaseModel):
    """One member's answer in a consensus completion."""

    model: str
    version: str | None = None
    content: str | None = Field(description="None when the member failed")
    normalised: str | None = Field(description="what the vote compared; None: no vote")
    agrees: bool = Field(description="whether it is in the winning group")
    error: str | None = None
    completion_tokens: int = 0


class ConsensusReport(BaseModel):
    """The extension field `demigod_consensus`: how the winner was chosen."""

    method: Literal["vote", "judge"]
    normaliser: str
    quorum: int
    reached: bool
    winner: str | None = Field(description="the model whose answer is the message")
    agreement: float = Field(description="share of members that gave the winning answer")
    judge: str | None = None
    answers: list[ConsensusAnswer]


class ConsensusChatCompletion(ChatCompletion):
    """A chat completion answered by several models; the message is the winner's."""

    demigod_consensus: ConsensusReport


class ChatDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatChunkChoice(BaseModel):
    index: int = 0
    delta: ChatDelta
    finish_reason: FinishReason | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    finish_reason: FinishReason | None
    logprobs: None = None


class Completion(BaseModel):
    """A text completion; streamed chunks use the same shape (OpenAI does too)."""

    id: str = Field(default_factory=lambda: new_id("cmpl"))
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=now)
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "demigod"
    categories: list[str] = Field(default_factory=list)
    context_length: int | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class RouteResponse(BaseModel):
    """The routing decision for a request (`POST /v1/route`, header `x-demigod-route`)."""

    model: str
    version: str
    category: str | None = Field(description="None when the request named its model")
    reason: str


class TokenizeRequest(BaseModel):
    model: str = Field(min_length=1)
    content: str
    add_special: StrictBool = True


class TokenizeResponse(BaseModel):
    model: str
    tokens: list[int]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
