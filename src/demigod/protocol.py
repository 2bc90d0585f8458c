"""The OpenAI-compatible wire format, in one place, shared by server and client code.

Requests reject unknown types and out-of-range values with a message that names the
field. A request field is honoured or refused, never silently dropped: the request models
and every object nested in them (messages, content parts, tools, response_format,
stream_options...) refuse keys they do not declare, so the 400 names the path
(`messages[1].foo`). A few fields OpenAI clients send as `null` (an assistant message's
`audio`, `function_call`) are accepted only as `null`.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal, TypeGuard

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
)

MAX_STOP_SEQUENCES = 4
MAX_STOP_LENGTH = 256
# OpenAI's bounds: chat top_logprobs 0..20, completions logprobs 0..5.
MAX_TOP_LOGPROBS = 20
MAX_COMPLETION_LOGPROBS = 5
# Choices per request (`n`): each is its own sequence in the engine's batch.
MAX_CHOICES = 8

FinishReason = Literal["stop", "length", "tool_calls"]


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


class RequestObject(BaseModel):
    """An object inside a request: keys it does not declare are refused (400 naming the
    path), as at the top level."""

    model_config = ConfigDict(extra="forbid")


class StreamOptions(RequestObject):
    include_usage: StrictBool = False
    include_obfuscation: Literal[False] | None = Field(
        default=None, description="streams are never obfuscated: only false (or null) is accepted"
    )


class CompletionFields(RequestObject):
    """Fields common to chat and text completions, with OpenAI's ranges.

    The request models are the one declaration of what the API honours: every field they
    declare is acted on, and any other field (an OpenAI one the mesh does not implement,
    or a typo) is refused with a 400 naming it, never silently dropped. README's API table
    lists both.
    """

    model: str = Field(min_length=1, max_length=256)
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="OpenAI's newer name for max_tokens (the smaller one wins)"
    )
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 1.0
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = None
    stop: str | list[str] | None = None
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    n: Annotated[int, Field(ge=1, le=MAX_CHOICES)] = Field(
        default=1, description="choices, each sampled as its own sequence in the batch"
    )
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

    @property
    def token_limit(self) -> int | None:
        """The most tokens to generate per choice: `max_completion_tokens` or `max_tokens`
        (the smaller when both are given); None: the endpoint's default."""
        limits = [v for v in (self.max_tokens, self.max_completion_tokens) if v is not None]
        return min(limits) if limits else None


class JsonObjectFormat(RequestObject):
    """`response_format: {"type": "json_object"}`: the answer is a JSON object."""

    type: Literal["json_object"]


class JsonSchemaSpec(RequestObject):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    # `schema` clashes with a BaseModel attribute: aliased.
    json_schema: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class JsonSchemaFormat(RequestObject):
    """`response_format: {"type": "json_schema", ...}`: the answer validates against the
    schema (always enforced while sampling, `strict` or not)."""

    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


class TextFormat(RequestObject):
    type: Literal["text"]


ResponseFormat = Annotated[
    TextFormat | JsonObjectFormat | JsonSchemaFormat, Field(discriminator="type")
]


class FunctionDefinition(RequestObject):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ChatTool(RequestObject):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(RequestObject):
    name: str


class NamedToolChoice(RequestObject):
    """`tool_choice: {"type": "function", "function": {"name": ...}}`: call this one."""

    type: Literal["function"]
    function: NamedFunction


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


class FunctionCall(RequestObject):
    name: str
    arguments: str = Field(description="the arguments as JSON text")


class ToolCall(RequestObject):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class TextPart(RequestObject):
    type: Literal["text"]
    text: str


class RefusalPart(RequestObject):
    """An assistant message's earlier refusal, as a content part (read as its text)."""

    type: Literal["refusal"]
    refusal: str


# Image, audio and file parts are refused (400 naming the part): the engines read text.
ContentPart = Annotated[TextPart | RefusalPart, Field(discriminator="type")]


def part_text(part: object) -> str:
    """A content part's text (a refusal part's refusal); anything else reads as none.
    Parts may be validated (TextPart, RefusalPart) or raw JSON objects."""
    if isinstance(part, TextPart):
        return part.text
    if isinstance(part, RefusalPart):
        return part.refusal
    if isinstance(part, dict):
        text = part.get("text", part.get("refusal"))
        return text if isinstance(text, str) else ""
    return ""


def content_text(content: object) -> str:
    """A message's text: its string content, or its parts' text joined; anything else
    reads as no text. Lenient, so that the pass-through can read bodies it does not
    validate."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part_text(part) for part in content)
    return ""


def text_of_prompt(prompt: object) -> str:
    """A completion's prompt: the string, or a list's strings one per line."""
    if isinstance(prompt, list):
        return "\n".join(item for item in prompt if isinstance(item, str))
    return prompt if isinstance(prompt, str) else ""


def is_token_ids(value: object) -> TypeGuard[list[int]]:
    """A non-empty list of token ids (ints, not bools)."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, int) and not isinstance(item, bool) for item in value)
    )


def token_prompts(prompt: object) -> list[list[int]]:
    """A completion's prompts given as token ids: `[1, 2]`, or each token list of a list
    (`[[1, 2], [3]]`); text prompts read as none. Lenient, as `text_of_prompt`."""
    if is_token_ids(prompt):
        return [list(prompt)]
    if isinstance(prompt, list):
        return [list(item) for item in prompt if is_token_ids(item)]
    return []


def readable_prompt(prompt: object) -> bool:
    """Whether `prompt` has a shape the screens can read: a string, token ids, or a list
    of strings or token-id lists."""
    if isinstance(prompt, str) or is_token_ids(prompt):
        return True
    return isinstance(prompt, list) and all(
        isinstance(item, str) or is_token_ids(item) for item in prompt
    )


class ChatMessage(RequestObject):
    """One message as the OpenAI SDK's `ChatCompletion*MessageParam` types send it."""

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    refusal: str | None = Field(
        default=None, description="an assistant's earlier refusal: its text when no content"
    )
    tool_calls: list[ToolCall] | None = Field(
        default=None, description="an assistant message's calls"
    )
    tool_call_id: str | None = Field(default=None, description="a tool message's call")
    # What the SDK sends back of an earlier answer; only null is accepted (never served).
    audio: None = Field(default=None, description="only null: audio answers are not served")
    function_call: None = Field(default=None, description="only null (legacy): use tool_calls")

    def text(self) -> str:
        """What the model reads of the message: its content's text, else its refusal."""
        return content_text(self.content) or (self.refusal or "")

    @field_validator("content")
    @classmethod
    def _refusal_parts_from_assistant(
        cls, value: str | list[TextPart | RefusalPart] | None, info: ValidationInfo
    ) -> str | list[TextPart | RefusalPart] | None:
        refusals = isinstance(value, list) and any(isinstance(p, RefusalPart) for p in value)
        if refusals and info.data.get("role") != "assistant":
            raise ValueError("refusal parts belong to assistant messages only")
        return value

    @field_validator("refusal")
    @classmethod
    def _refusal_from_assistant(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("role") != "assistant":
            raise ValueError("only an assistant message carries a refusal")
        return value


class ChatCompletionRequest(CompletionFields):
    messages: list[ChatMessage] = Field(min_length=1)
    consensus: dict[str, Any] | None = Field(
        default=None, description="extension: consensus option overrides (docs/routing.md)"
    )
    response_format: ResponseFormat | None = None
    tools: list[ChatTool] | None = Field(default=None, max_length=128)
    tool_choice: ToolChoice | None = Field(
        default=None, description="default: auto with tools, none without"
    )
    parallel_tool_calls: StrictBool | None = Field(
        default=None, description="constrained calls are one call, which either value allows"
    )
    logprobs: StrictBool = False
    top_logprobs: Annotated[int, Field(ge=0, le=MAX_TOP_LOGPROBS)] | None = None

    # Cross-field checks sit on the later field, so that the 400 names it (`param`).
    @field_validator("tools")
    @classmethod
    def _unique_names(cls, tools: list[ChatTool] | None) -> list[ChatTool] | None:
        names = [tool.function.name for tool in tools or ()]
        if len(set(names)) != len(names):
            raise ValueError("tool names must be unique")
        return tools

    @field_validator("tool_choice", mode="after")
    @classmethod
    def _choice_fits_tools(
        cls, choice: ToolChoice | None, info: ValidationInfo
    ) -> ToolChoice | None:
        names = [tool.function.name for tool in info.data.get("tools") or ()]
        if isinstance(choice, NamedToolChoice) and choice.function.name not in names:
            raise ValueError(f"names {choice.function.name!r}, which is not in tools")
        if choice == "required" and not names:
            raise ValueError("'required' needs tools")
        return choice

    @field_validator("top_logprobs", mode="after")
    @classmethod
    def _needs_logprobs(cls, top: int | None, info: ValidationInfo) -> int | None:
        if top is not None and not info.data.get("logprobs"):
            raise ValueError("top_logprobs needs logprobs: true")
        return top

    def effective_tool_choice(self) -> Literal["none", "auto", "required"] | NamedToolChoice:
        """OpenAI's default: `auto` when tools are given, else `none`."""
        if self.tool_choice is not None:
            return self.tool_choice
        return "auto" if self.tools else "none"


class CompletionRequest(CompletionFields):
    prompt: str | list[str] | list[int] | list[list[int]] = Field(
        description="one prompt: text or token ids; a list of prompts must hold exactly one"
    )
    echo: StrictBool = False
    logprobs: Annotated[int, Field(ge=0, le=MAX_COMPLETION_LOGPROBS)] | None = None
    response_format: ResponseFormat | None = Field(
        default=None, description="extension: structured output, as on chat"
    )

    @field_validator("prompt")
    @classmethod
    def _single_prompt(
        cls, value: str | list[str] | list[int] | list[list[int]]
    ) -> str | list[str] | list[int] | list[list[int]]:
        if isinstance(value, list) and value and isinstance(value[0], int):
            return value  # one prompt as token ids
        if isinstance(value, list) and len(value) != 1:
            raise ValueError("exactly one prompt per request (several choices: use n)")
        return value

    def single_prompt(self) -> str | list[int]:
        """The one prompt: its text, or its token ids."""
        prompt = self.prompt
        if isinstance(prompt, str):
            return prompt
        if prompt and isinstance(prompt[0], int):
            return [int(token) for token in prompt]
        return prompt[0]  # type: ignore[return-value]

    def prompt_text(self) -> str:
        """The prompt's text; empty for a prompt given as token ids."""
        return text_of_prompt(self.prompt)


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


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = Field(description="the token's UTF-8 bytes")


class ChatTokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(BaseModel):
    """A chat choice's `logprobs`: one entry per sampled token."""

    content: list[ChatTokenLogprob] | None
    refusal: None = None


class CompletionLogprobs(BaseModel):
    """A text completion choice's `logprobs` (the legacy shape): parallel lists, one entry
    per token; with `echo`, the prompt's tokens first (the very first has no logprob)."""

    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None]
    text_offset: list[int]


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCall] | None = None
    refusal: None = None


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason
    logprobs: ChoiceLogprobs | None = None


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


class FunctionCallDelta(BaseModel):
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(BaseModel):
    """A streamed piece of a tool call; `index` says which call it extends."""

    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionCallDelta | None = None


class ChatDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChatChunkChoice(BaseModel):
    index: int = 0
    delta: ChatDelta
    finish_reason: FinishReason | None = None
    logprobs: ChoiceLogprobs | None = None


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
    logprobs: CompletionLogprobs | None = None


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
    """llama-server's `{content, add_special}`; vLLM's `{prompt, add_special_tokens}` (what
    lm-evaluation-harness' remote tokenizer sends) is read too. `model` may be left out
    when the server serves one model."""

    model: str | None = Field(default=None, min_length=1)
    content: str = Field(validation_alias=AliasChoices("content", "prompt"))
    add_special: StrictBool = Field(
        default=True, validation_alias=AliasChoices("add_special", "add_special_tokens")
    )


class TokenizeResponse(BaseModel):
    model: str
    tokens: list[int]


class DetokenizeRequest(BaseModel):
    model: str | None = Field(default=None, min_length=1)
    tokens: list[Annotated[int, Field(ge=0)]]


class DetokenizeResponse(BaseModel):
    """The text of the tokens: `content` (llama-server's name) and `prompt` (vLLM's)."""

    model: str
    content: str
    prompt: str


class TokenizerInfo(BaseModel):
    """`GET /tokenizer_info` (vLLM's): what a client needs to tokenize as the model does."""

    model: str
    bos_token: str | None
    eos_token: str | None
    pad_token: str | None = None
    chat_template: str | None
    model_max_length: int


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class Readiness(BaseModel):
    """`GET /readyz`: whether every model is loaded and its engine alive (503 when not)."""

    status: Literal["ready", "not ready"]
    models: list[str]
    upstreams: list[str]


class DeepHealth(BaseModel):
    """`GET /healthz/deep`: each model's probe result, "ok" or what failed (503 when any
    failed)."""

    status: Literal["ok", "failing"]
    models: dict[str, str]


class LlamaServerHealth(BaseModel):
    """`GET /health` as llama-server answers it: `{"status": "ok"}` once every model is
    loaded (while not, a 503 error object)."""

    status: Literal["ok"] = "ok"


class GenerationDefaults(BaseModel):
    """What a request that sets nothing gets (the request models' defaults)."""

    n_ctx: int
    temperature: float
    top_p: float


class Modalities(BaseModel):
    vision: bool = False
    audio: bool = False


class ModelProps(BaseModel):
    """`GET /props` (llama-server's): one served model's context, slots, template and
    special tokens. Read-only: the POST that changes settings is not served."""

    model_alias: str = Field(description="the served model's name")
    version: str
    architecture: str
    default_generation_settings: GenerationDefaults
    total_slots: int = Field(description="sequences decoded together (engine.slots)")
    chat_template: str = Field(description="the GGUF's template, or the documented default")
    bos_token: str
    eos_token: str
    modalities: Modalities = Field(default_factory=Modalities)
    build_info: str = Field(description="the llama.cpp build the engine runs")


class SlotState(BaseModel):
    """One decode slot in `GET /slots` (llama-server's, read-only)."""

    id: int
    n_ctx: int
    is_processing: bool
