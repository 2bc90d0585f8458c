"""What a request asks of its output beyond plain text, checked against the model.

Structured output (`response_format`), tool calls (`tools`, `tool_choice`), token
log-probabilities (`logprobs`, `top_logprobs`, `echo`) become an `OutputPlan`: the grammar
and logprob settings the engine samples with, and how the answer is read back (tool calls).
A field the model's engine cannot honour is a 400 naming it, never a silent default.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from demigod.api.errors import APIError
from demigod.engines.base import EngineInfo, Feature, OutputGrammar
from demigod.engines.chat_template import ChatTemplate
from demigod.engines.tool_calls import ToolCallSyntax, call_grammar
from demigod.protocol import (
    ChatCompletionRequest,
    ChatTool,
    CompletionRequest,
    JsonObjectFormat,
    JsonSchemaFormat,
    NamedToolChoice,
    ResponseFormat,
)

# The schema of `response_format: json_object`: any JSON object.
ANY_OBJECT = "{}"


@dataclass(frozen=True)
class OutputPlan:
    """How to sample and read one request's answer.

    `grammar_field` names the request field the grammar comes from (errors name it);
    `tools`/`tool_syntax`: the answer is read for tool calls in that syntax; `tools` are
    also what the chat template describes to the model."""

    grammar: OutputGrammar | None = None
    grammar_field: str = ""
    logprobs: int | None = None
    prompt_logprobs: int | None = None
    tools: list[ChatTool] = field(default_factory=list)
    tool_syntax: ToolCallSyntax | None = None

    @property
    def reads_tool_calls(self) -> bool:
        return self.tool_syntax is not None


def chat_plan(body: ChatCompletionRequest, template: ChatTemplate, info: EngineInfo) -> OutputPlan:
    """The plan of a chat request for a model with `template` and engine `info`.

    Raises APIError (400, naming the field) for what the engine cannot do."""
    choice = body.effective_tool_choice()
    grammar, grammar_field = _format_grammar(body.response_format), "response_format"
    tools: list[ChatTool] = []
    syntax = None
    if body.tools and choice != "none":
        if grammar is not None:
            raise APIError(
                400,
                "response_format: a JSON answer and tool calls cannot both shape one answer; "
                "set tool_choice to none",
                param="response_format",
            )
        tools, syntax = list(body.tools), template.tool_syntax
        constrained = choice != "auto"
        # With `auto` and no grammar in the engine, a call is still read back, unshaped.
        if constrained or "grammar" in info.features:
            only = choice.function.name if isinstance(choice, NamedToolChoice) else None
            grammar = call_grammar(syntax, tools, only=only, lazy=not constrained)
            grammar_field = "tool_choice" if constrained else "tools"
    logprobs = (body.top_logprobs or 0) if body.logprobs else None
    _require(info, "logprobs", "logprobs", logprobs is not None)
    _require(info, "grammar", grammar_field, grammar is not None)
    if grammar is not None and body.ignore_eos:
        raise APIError(
            400, f"ignore_eos cannot be combined with {grammar_field}", param="ignore_eos"
        )
    return OutputPlan(grammar, grammar_field, logprobs, None, tools, syntax)


def completion_plan(body: CompletionRequest, info: EngineInfo) -> OutputPlan:
    """The plan of a text completion (`response_format` is an extension here).

    Raises APIError (400, naming the field) for what the engine cannot do."""
    grammar = _format_grammar(body.response_format)
    prompt_logprobs = body.logprobs if body.echo else None
    _require(info, "logprobs", "logprobs", body.logprobs is not None)
    _require(info, "prompt_logprobs", "echo", prompt_logprobs is not None)
    _require(info, "grammar", "response_format", grammar is not None)
    if grammar is not None and body.ignore_eos:
        raise APIError(
            400, "ignore_eos cannot be combined with response_format", param="ignore_eos"
        )
    return OutputPlan(grammar, "response_format", body.logprobs, prompt_logprobs)


def _format_grammar(response_format: ResponseFormat | None) -> OutputGrammar | None:
    if isinstance(response_format, JsonObjectFormat):
        return OutputGrammar(ANY_OBJECT)
    if isinstance(response_format, JsonSchemaFormat):
        spec = response_format.json_schema
        return OutputGrammar(json.dumps(spec.json_schema), strict=bool(spec.strict))
    return None


def _require(info: EngineInfo, feature: Feature, param: str, wanted: bool) -> None:
    if wanted and feature not in info.features:
        raise APIError(
            400,
            f"{param}: this model's engine ({info.metadata.get('demigod.backend', 'llama.cpp')}) "
            f"does not support {feature.replace('_', ' ')}",
            param=param,
        )
