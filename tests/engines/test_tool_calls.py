"""Tool calls: constrained decoding makes them well-formed; the parser reads them back."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from demigod.engines.base import SamplingParams
from demigod.engines.tool_calls import (
    HERMES,
    JAMBA,
    MISTRAL,
    ToolCallStream,
    ToolCallSyntax,
    call_grammar,
    parse_calls,
)
from demigod.protocol import ChatTool
from tests.engines.conftest import EngineRunner, engine_config


def tool(name: str, parameters: dict[str, object], strict: bool = False) -> ChatTool:
    function = {"name": name, "parameters": parameters, "strict": strict}
    return ChatTool.model_validate({"type": "function", "function": function})


# The weather tool of every tool test (engine, templates, servers).
WEATHER_PARAMETERS: dict[str, object] = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 10}, "unit": {"enum": ["C", "F"]}},
    "required": ["city", "unit"],
    "additionalProperties": False,
}
TOOLS = [
    tool("get_weather", WEATHER_PARAMETERS, strict=True),
    tool(
        "add",
        {
            "type": "object",
            # `minimum` is not enforceable: a non-strict tool keeps the rest
            "properties": {"a": {"type": "integer", "minimum": 0}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    ),
]


@pytest.mark.parametrize("syntax", [HERMES, MISTRAL, JAMBA], ids=lambda s: s.name)
@pytest.mark.parametrize("only", [None, "add"])
def test_a_required_call_is_well_formed_whatever_the_model(
    tiny_model: Path, runner: EngineRunner, syntax: ToolCallSyntax, only: str | None
) -> None:
    engine = runner.open(tiny_model, engine_config())
    prompt = engine.tokenize("User: add 2 and 3\nAssistant:")
    grammar = call_grammar(syntax, TOOLS, only=only, lazy=False)
    batch = [(prompt, SamplingParams(90, 0.8, seed=seed, grammar=grammar)) for seed in (1, 2, 3)]
    for answer in runner.complete_all(engine, batch):
        content, calls = parse_calls(answer, syntax)
        assert content.strip() == "" and len(calls) == 1, answer
        (call,) = calls
        assert call.name == only if only else call.name in {"get_weather", "add"}
        parameters = next(t.function.parameters for t in TOOLS if t.function.name == call.name)
        arguments = json.loads(call.arguments)
        if call.name == "add":  # what the grammar enforces of the non-strict schema
            assert set(arguments) == {"a", "b"} and all(type(v) is int for v in arguments.values())
        else:
            jsonschema.validate(arguments, parameters)


def test_a_strict_tool_with_an_unenforceable_schema_is_refused(
    tiny_model: Path, runner: EngineRunner
) -> None:
    from demigod.engines.base import GenerationRequest, InvalidGrammarError

    engine = runner.open(tiny_model, engine_config())
    strict = tool(
        "f", {"type": "object", "properties": {"n": {"type": "integer", "maximum": 3}}}, True
    )
    grammar = call_grammar(HERMES, [strict], only=None, lazy=False)
    with pytest.raises(InvalidGrammarError, match="'maximum' at"):
        engine.generate(GenerationRequest(engine.tokenize("x"), SamplingParams(8, grammar=grammar)))


@pytest.mark.parametrize(
    ("text", "syntax", "content", "calls"),
    [
        ("Sure.", HERMES, "Sure.", []),
        (
            'Let me check.<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool_call>',
            HERMES,
            "Let me check.",
            [("f", {"x": 1})],
        ),
        (
            '<tool_call>{"name": "f", "arguments": {}}</tool_call>\n'
            '<tool_call>{"name": "g", "parameters": {"y": "z"}}</tool_call>',
            HERMES,
            "",
            [("f", {}), ("g", {"y": "z"})],
        ),
        (
            '[TOOL_CALLS] [{"name": "f", "arguments": {"a": [1]}, "id": "abcdefghi"}]',
            MISTRAL,
            "",
            [("f", {"a": [1]})],
        ),
        (
            '<tool_calls>[{"name": "f", "arguments": "{\\"k\\": 2}"}]</tool_calls>',
            JAMBA,
            "",
            [("f", {"k": 2})],
        ),
        # cut short, or not a call object: the whole text is content
        ('<tool_call>{"name": "f", "argu', HERMES, '<tool_call>{"name": "f", "argu', []),
        ('<tool_call>{"name": "f"}', HERMES, '<tool_call>{"name": "f"}', []),
        ('<tool_call>["f"]</tool_call>', HERMES, '<tool_call>["f"]</tool_call>', []),
    ],
)
def test_calls_are_read_back_from_text(
    text: str, syntax: ToolCallSyntax, content: str, calls: list[tuple[str, object]]
) -> None:
    found_content, found = parse_calls(text, syntax)
    assert found_content == content
    assert [(call.name, json.loads(call.arguments)) for call in found] == calls


def test_streamed_content_stops_at_the_markup_even_split_across_pieces() -> None:
    stream = ToolCallStream(HERMES)
    pieces = [
        "I will",
        " check <to",
        "ol_",
        "call>{",
        '"name": "f", "arguments": {}}',
        "</tool_call>",
    ]
    shown = [stream.feed(piece) for piece in pieces]
    assert "".join(shown) == "I will check "
    assert shown[1] == " check "  # "<to" held back: it may open a call
    rest, calls = stream.finish()
    assert rest == "" and [(c.name, c.arguments) for c in calls] == [("f", "{}")]


def test_streamed_text_that_only_looked_like_markup_is_shown() -> None:
    stream = ToolCallStream(HERMES)
    assert stream.feed("a <to") == "a "
    assert stream.feed("p> b") == "<top> b"
    assert stream.finish() == ("", [])
    broken = ToolCallStream(HERMES)
    assert broken.feed('<tool_call>{"na') == ""
    assert broken.finish() == ('<tool_call>{"na', [])
