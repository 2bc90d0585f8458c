"""Chat messages → prompt text: the GGUF's own Jinja template, or a documented default.

Templates are rendered as transformers' `apply_chat_template` renders them (the templates
are written for it, and llama.cpp follows it too): a sandboxed Jinja environment with
`trim_blocks`/`lstrip_blocks`, the loop controls (`break`, `continue`), a `tojson` that
does not escape HTML and takes `indent`, and the globals `raise_exception` and
`strftime_now`; the variables `messages`, `tools`, `add_generation_prompt`, `bos_token`,
`eos_token`. Messages are OpenAI's: assistant `tool_calls` keep OpenAI's shape with their
`arguments` parsed into objects (what templates print with `tojson`), and `tool`
messages carry `tool_call_id` and the called function's `name`.

The default (for models that ship no template, such as the demo models) is plain text:

    System: {system message}
    User: {user message}
    Assistant: {assistant message}
    ...
    Assistant:

and generation also stops at a new line starting "User:", so a base model does not write
the user's next turn.

Tools reach templates that render them (those that use the `tools` variable) as
`tools`. Other templates, the default included, get the documented default: a system
message that lists the tools and the call syntax (demigod.engines.tool_calls' hermes
markup), assistant calls written in that markup, and tool results as user messages in
`<tool_response>` tags.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from jinja2 import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from demigod.engines.tool_calls import DEFAULT_SYNTAX, ToolCallSyntax, syntax_of
from demigod.protocol import ChatMessage, ChatTool, ToolCall

# A reply the model wrote after "Assistant:" starts with its own space; rendering it without
# a second one gives back the exact text (and tokens) the model produced, so the next turn's
# prompt extends the saved recurrent state of this one (demigod.engines.state_cache).
DEFAULT_TEMPLATE = (
    "{% for message in messages %}"
    "{% set content = message.content or '' %}"
    "{{ message.role | capitalize }}:"
    "{{ '' if content[:1] in (' ', '\n') else ' ' }}{{ content }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)
DEFAULT_STOPS = ("\nUser:",)
# The system text that describes tools to a model whose template does not.
DEFAULT_TOOLS_PROMPT = (
    "You can call functions. Their signatures, one JSON object a line:\n"
    "{tools}\n"
    "To call one, answer with "
    '{opening}{{"name": <function name>, "arguments": <arguments object>}}{closing}'
)
# A template renders tools itself when it reads the `tools` variable.
_READS_TOOLS = re.compile(r"\btools\b")


class ChatTemplateError(ValueError):
    """The model's template cannot render these messages."""


def _raise_exception(message: str) -> None:
    raise ChatTemplateError(message)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    """transformers' `tojson`: plain json.dumps, no HTML escaping, its options exposed."""
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _strftime_now(format: str) -> str:
    return datetime.now().strftime(format)


class ChatTemplate:
    def __init__(self, source: str | None, *, bos_token: str = "", eos_token: str = "") -> None:
        self.is_default = source is None
        self.stops = DEFAULT_STOPS if source is None else ()
        self.renders_tools = source is not None and bool(_READS_TOOLS.search(source))
        self.tool_syntax: ToolCallSyntax = syntax_of(source)
        environment = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
        )
        environment.filters["tojson"] = _tojson
        environment.globals["raise_exception"] = _raise_exception
        environment.globals["strftime_now"] = _strftime_now
        self._template = environment.from_string(source or DEFAULT_TEMPLATE)
        self._bos_token = bos_token
        self._eos_token = eos_token

    def render(self, messages: Sequence[ChatMessage], tools: Sequence[ChatTool] = ()) -> str:
        """The prompt for `messages` (and the `tools` the model may call), ending where
        the assistant's reply starts.

        Raises ChatTemplateError when the template rejects the conversation.
        """
        items = template_messages(messages)
        tool_items = [tool.model_dump(exclude_none=True) for tool in tools] or None
        if not self.renders_tools and (tools or any(_mentions_tools(item) for item in items)):
            items = self._with_default_tools(items, tool_items or [])
            tool_items = None
        try:
            return self._template.render(
                messages=items,
                tools=tool_items,
                add_generation_prompt=True,
                bos_token=self._bos_token,
                eos_token=self._eos_token,
            )
        except (TemplateError, TypeError, ValueError) as exc:
            raise ChatTemplateError(f"chat template failed: {exc}") from exc

    def _with_default_tools(
        self, items: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The documented default for a template that does not render tools: the tools
        in a system message, calls in the default markup, results as user messages."""
        syntax = DEFAULT_SYNTAX
        rewritten: list[dict[str, Any]] = []
        for item in items:
            if item["role"] == "assistant" and item.get("tool_calls"):
                calls = "".join(
                    syntax.opening
                    + json.dumps(
                        {"name": c["function"]["name"], "arguments": c["function"]["arguments"]},
                        ensure_ascii=False,
                    )
                    + syntax.closing
                    for c in item["tool_calls"]
                )
                rewritten.append({"role": "assistant", "content": (item["content"] or "") + calls})
            elif item["role"] == "tool":
                rewritten.append(
                    {"role": "user", "content": f"<tool_response>{item['content']}</tool_response>"}
                )
            else:
                rewritten.append(item)
        if tools:
            described = DEFAULT_TOOLS_PROMPT.format(
                tools="\n".join(json.dumps(tool, ensure_ascii=False) for tool in tools),
                opening=syntax.opening,
                closing=syntax.closing,
            )
            if rewritten and rewritten[0]["role"] == "system":
                first = rewritten[0]
                rewritten[0] = {**first, "content": f"{described}\n\n{first['content'] or ''}"}
            else:
                rewritten.insert(0, {"role": "system", "content": described})
        return rewritten


def template_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """OpenAI messages as chat templates read them (see the module docstring)."""
    called: dict[str, str] = {}  # tool_call_id -> function name
    items: list[dict[str, Any]] = []
    for message in messages:
        item: dict[str, Any] = {
            "role": "system" if message.role == "developer" else message.role,
            # An assistant's earlier refusal is what it said when it has no content.
            "content": None
            if message.content is None and message.refusal is None
            else message.text(),
        }
        if message.name is not None:
            item["name"] = message.name
        if message.tool_calls:
            item["tool_calls"] = [_call_item(call) for call in message.tool_calls]
            called.update((call.id, call.function.name) for call in message.tool_calls)
        if message.role == "tool":
            item["content"] = message.text()
            item["tool_call_id"] = message.tool_call_id
            if message.name is None and message.tool_call_id in called:
                item["name"] = called[message.tool_call_id]
        items.append(item)
    return items


def _call_item(call: ToolCall) -> dict[str, Any]:
    try:
        arguments: Any = json.loads(call.function.arguments)
    except json.JSONDecodeError:
        arguments = call.function.arguments  # not JSON: the template gets the text
    return {
        "id": call.id,
        "type": call.type,
        "function": {"name": call.function.name, "arguments": arguments},
    }


def _mentions_tools(item: dict[str, Any]) -> bool:
    return item["role"] == "tool" or bool(item.get("tool_calls"))
