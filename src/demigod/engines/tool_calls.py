"""Tool calls in a model's output: the markup its family writes them in, the grammar that
makes the model write a well-formed one, and the reading of calls back out of the text.

Each syntax is JSON between literal markup, as the chat templates teach it (CALL is
`{"name": ..., "arguments": {...}}`):

- hermes: `<tool_call>CALL</tool_call>` (Granite-4, Falcon-H1, Qwen, Hermes templates);
- mistral: `[TOOL_CALLS][CALL, ...]` (Mistral and Codestral templates, Mamba-Codestral);
- jamba: `<tool_calls>[CALL, ...]</tool_calls>` (Jamba 1.5 and later).

A template that shows none of these markups gets the hermes syntax, which is also the
documented default of models without a template (demigod.engines.chat_template says how
the tools are described to them). A constrained call (`tool_choice` required or a named
function) is exactly one call; with `auto` the model may write text, and a call it starts
is completed under the grammar (a lazy grammar, from the opening markup on).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from demigod.engines.base import OutputGrammar
from demigod.engines.json_schema import enforceable_part
from demigod.engines.stops import partial_match
from demigod.protocol import ChatTool


@dataclass(frozen=True)
class ToolCallSyntax:
    """How a model family writes tool calls: JSON between `opening` and `closing`
    markup; `listed`: the JSON is a list of calls, else one call object per markup."""

    name: str
    opening: str
    closing: str
    listed: bool


HERMES = ToolCallSyntax("hermes", "<tool_call>", "</tool_call>", listed=False)
MISTRAL = ToolCallSyntax("mistral", "[TOOL_CALLS]", "", listed=True)
JAMBA = ToolCallSyntax("jamba", "<tool_calls>", "</tool_calls>", listed=True)
DEFAULT_SYNTAX = HERMES
# Most specific markup first: a template that writes `<tool_calls>` also contains `<tool_call`.
_SYNTAXES = (MISTRAL, JAMBA, HERMES)


def syntax_of(template: str | None) -> ToolCallSyntax:
    """The tool-call syntax a chat template teaches, by the markup it writes."""
    for syntax in _SYNTAXES:
        if template and syntax.opening in template:
            return syntax
    return DEFAULT_SYNTAX


@dataclass(frozen=True)
class ParsedCall:
    name: str
    arguments: str  # JSON text, as OpenAI's `function.arguments`


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def call_grammar(
    syntax: ToolCallSyntax, tools: Sequence[ChatTool], *, only: str | None, lazy: bool
) -> OutputGrammar:
    """The grammar of one call to one of `tools` (or to `only`), in `syntax`.

    A tool with `strict: true` must have an enforceable parameter schema (else the engine
    raises InvalidGrammarError); the others are enforced as far as a grammar can.
    """
    calls = [_call_schema(tool) for tool in tools if only is None or tool.function.name == only]
    call: dict[str, Any] = calls[0] if len(calls) == 1 else {"anyOf": calls}
    schema = (
        {"type": "array", "items": call, "minItems": 1, "maxItems": 1} if syntax.listed else call
    )
    return OutputGrammar(
        json.dumps(schema),
        strict=True,
        prefix=syntax.opening,
        suffix=syntax.closing,
        lazy=lazy,
    )


def _call_schema(tool: ChatTool) -> dict[str, Any]:
    function = tool.function
    parameters = function.parameters or {"type": "object"}
    if not function.strict:
        parameters = enforceable_part(parameters)
    return {
        "type": "object",
        "properties": {"name": {"const": function.name}, "arguments": parameters},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def parse_calls(text: str, syntax: ToolCallSyntax) -> tuple[str, list[ParsedCall]]:
    """(content, calls) of a model's answer: the text before the first opening markup
    and the calls that follow it. When the markup is absent or what follows it is not
    well-formed calls (a reply cut short, say), the whole text is content and no call."""
    start = text.find(syntax.opening)
    if start < 0:
        return text, []
    calls: list[ParsedCall] = []
    rest = text[start:]
    decoder = json.JSONDecoder()
    while rest.startswith(syntax.opening):
        body = rest[len(syntax.opening) :].lstrip()
        try:
            value, end = decoder.raw_decode(body)
        except json.JSONDecodeError:
            return text, []
        items = value if syntax.listed and isinstance(value, list) else [value]
        for item in items:
            call = _read_call(item)
            if call is None:
                return text, []
            calls.append(call)
        rest = body[end:].lstrip()
        if syntax.closing:
            if not rest.startswith(syntax.closing):
                return text, []
            rest = rest[len(syntax.closing) :].lstrip()
    return text[:start] + rest, calls


def _read_call(item: object) -> ParsedCall | None:
    """A call object `{"name": ..., "arguments": {...}}` (Llama-style `parameters` too)."""
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        return None
    arguments = item.get("arguments", item.get("parameters", {}))
    if isinstance(arguments, str):
        return ParsedCall(item["name"], arguments)
    return ParsedCall(item["name"], json.dumps(arguments, ensure_ascii=False))


class ToolCallStream:
    """Splits a streamed answer into content, shown as it comes, and the tool calls,
    held back from their opening markup on and read at the end (`finish`)."""

    def __init__(self, syntax: ToolCallSyntax) -> None:
        self._syntax = syntax
        self._pending = ""  # may be the start of the opening markup
        self._call: str | None = None  # from the opening markup on

    def feed(self, text: str) -> str:
        """The content to show now."""
        if self._call is not None:
            self._call += text
            return ""
        buffer = self._pending + text
        start = buffer.find(self._syntax.opening)
        if start >= 0:
            self._pending, self._call = "", buffer[start:]
            return buffer[:start]
        keep = partial_match(buffer, (self._syntax.opening,))
        self._pending = buffer[len(buffer) - keep :]
        return buffer[: len(buffer) - keep]

    def finish(self) -> tuple[str, list[ParsedCall]]:
        """(content not shown yet, calls) at the end of the answer; a call part that does
        not read as calls is content after all."""
        if self._call is None:
            pending, self._pending = self._pending, ""
            return pending, []
        return parse_calls(self._call, self._syntax)
