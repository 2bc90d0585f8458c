"""Chat templates of the served families, rendered as transformers renders them.

The templates in chat_templates/ are written in the shape each family's GGUF carries
(Granite-4 and Falcon-H1: hermes `<tool_call>` markup; Jamba: `<tool_calls>` lists;
Mamba-Codestral: Mistral's `[TOOL_CALLS]`; RWKV world: plain turns, no tools), using
what such templates use: loop controls, `tojson` with options, `strftime_now`,
namespaces, `raise_exception`, `tools`, `tool_calls`, `add_generation_prompt`. The
reference is transformers' own renderer, given the same messages.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers.utils.chat_template_utils import render_jinja_template

from demigod.engines.chat_template import ChatTemplate, ChatTemplateError, template_messages
from demigod.engines.tool_calls import HERMES, JAMBA, MISTRAL, parse_calls, syntax_of
from demigod.protocol import ChatMessage, ChatTool
from tests.engines.test_tool_calls import WEATHER_PARAMETERS

TEMPLATES = {
    path.stem: path.read_text(encoding="utf-8")
    for path in sorted((Path(__file__).parent / "chat_templates").glob("*.jinja"))
}
BOS, EOS = "<s>", "</s>"
WEATHER = ChatTool.model_validate(
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather of a city.",
            "parameters": WEATHER_PARAMETERS,
        },
    }
)
CALL = {
    "id": "call_0123456789abcdef",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Lima", "unit": "C"}'},
}
CONVERSATIONS: dict[str, tuple[list[dict[str, object]], list[ChatTool]]] = {
    "plain": ([{"role": "user", "content": "Hello there"}], []),
    "turns": (
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello! <b>&</b>"},
            {"role": "user", "content": "¿Qué tal?"},
        ],
        [],
    ),
    "tools": ([{"role": "user", "content": "Weather in Lima?"}], [WEATHER]),
    "tool_calls": (
        [
            {"role": "system", "content": "Use tools."},
            {"role": "user", "content": "Weather in Lima?"},
            {"role": "assistant", "content": None, "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": CALL["id"], "content": '{"temp": 19}'},
            {"role": "user", "content": "And tomorrow?"},
        ],
        [WEATHER],
    ),
}
TOOL_TEMPLATES = {
    "granite-4": HERMES,
    "falcon-h1": HERMES,
    "jamba": JAMBA,
    "mamba-codestral": MISTRAL,
}


def chat(raw: list[dict[str, object]]) -> list[ChatMessage]:
    return [ChatMessage.model_validate(message) for message in raw]


def reference(source: str, messages: list[ChatMessage], tools: list[ChatTool]) -> str:
    rendered, _ = render_jinja_template(
        conversations=[template_messages(messages)],
        tools=[tool.model_dump(exclude_none=True) for tool in tools] or None,
        chat_template=source,
        add_generation_prompt=True,
        bos_token=BOS,
        eos_token=EOS,
    )
    return str(rendered[0])


@pytest.mark.parametrize("conversation", sorted(CONVERSATIONS))
@pytest.mark.parametrize("family", sorted(TOOL_TEMPLATES))
def test_templates_render_as_transformers_renders_them(family: str, conversation: str) -> None:
    raw, tools = CONVERSATIONS[conversation]
    messages = chat(raw)
    ours = ChatTemplate(TEMPLATES[family], bos_token=BOS, eos_token=EOS).render(messages, tools)
    assert ours == reference(TEMPLATES[family], messages, tools)
    if tools:
        assert "get_weather" in ours and "Current weather of a city." in ours


@pytest.mark.parametrize("family", sorted(TOOL_TEMPLATES))
def test_the_syntax_a_template_teaches_is_the_one_read_back(family: str) -> None:
    """A call rendered by the family's template (an earlier assistant turn) parses back
    with the syntax detected from the template: the grammar that constrains calls and
    the parser that reads them speak the template's language."""
    template = ChatTemplate(TEMPLATES[family], bos_token=BOS, eos_token=EOS)
    syntax = TOOL_TEMPLATES[family]
    assert syntax_of(TEMPLATES[family]) == syntax == template.tool_syntax
    raw, tools = CONVERSATIONS["tool_calls"]
    before_call = template.render(chat(raw[:2]), tools)
    with_call = template.render(chat(raw[:3]), tools)
    answer = with_call.removeprefix(before_call) if with_call.startswith(before_call) else with_call
    _, calls = parse_calls(answer[answer.index(syntax.opening) :], syntax)
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "Lima", "unit": "C"})
    ]


def test_a_template_without_tools_gets_the_documented_default() -> None:
    template = ChatTemplate(TEMPLATES["rwkv-world"])
    assert not template.renders_tools and template.tool_syntax == HERMES
    raw, tools = CONVERSATIONS["tool_calls"]
    prompt = template.render(chat(raw), tools)
    assert prompt.startswith("System: You can call functions.")
    assert json.dumps(WEATHER.model_dump(exclude_none=True)) in prompt
    assert "Use tools." in prompt  # the client's system message follows the tools
    assert (
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Lima", "unit": "C"}}' in prompt
    )
    assert 'User: <tool_response>{"temp": 19}</tool_response>' in prompt
    assert prompt.endswith("User: And tomorrow?\n\nAssistant:")
    # Without tools the family's own rendering is untouched.
    plain = chat(CONVERSATIONS["turns"][0])
    assert template.render(plain) == reference(TEMPLATES["rwkv-world"], plain, [])


def test_the_default_template_renders_tool_turns_as_plain_lines() -> None:
    raw, tools = CONVERSATIONS["tool_calls"]
    prompt = ChatTemplate(None).render(chat(raw), tools)
    lines = prompt.splitlines()
    assert lines[0] == "System: You can call functions. Their signatures, one JSON object a line:"
    assert lines[-3:] == [
        'User: <tool_response>{"temp": 19}</tool_response>',
        "User: And tomorrow?",
        "Assistant:",
    ]


def test_strftime_now_and_loop_controls_work() -> None:
    source = (
        "{% for m in messages %}{% if m.role == 'system' %}{% continue %}{% endif %}"
        "{{ m.content }}{% if loop.index > 2 %}{% break %}{% endif %}|{% endfor %}"
        "{{ strftime_now('%Y') }}"
    )
    rendered = ChatTemplate(source).render(chat(CONVERSATIONS["turns"][0]))
    assert rendered[:-4] == "Hi|Hello! <b>&</b>" and rendered[-4:].isdigit()


def test_template_checks_are_clear_errors() -> None:
    raw, tools = CONVERSATIONS["tool_calls"]
    short_id = [dict(message) for message in raw]
    short_id[2] = {**short_id[2], "tool_calls": [{**CALL, "id": "call_1"}]}
    template = ChatTemplate(TEMPLATES["mamba-codestral"], bos_token=BOS, eos_token=EOS)
    with pytest.raises(ChatTemplateError, match="at least 9 characters"):
        template.render(chat(short_id), tools)
