"""Output grammars in the batch decoder: every sampled token stays inside the grammar.

The tiny model is random: left alone it never writes JSON. Whatever it writes under a
grammar parses and validates, so the grammar, not the model, gives the form.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest

from demigod.engines.base import (
    GenerationEvent,
    GenerationRequest,
    InvalidGrammarError,
    OutputGrammar,
    SamplingParams,
    UnsupportedFeatureError,
)
from demigod.engines.json_schema import check_enforceable, enforceable_part
from demigod.engines.llama_cpp import LlamaCppEngine
from tests.engines.conftest import EngineRunner, collect, engine_config

# Bounded schemas: a random model under an unbounded string rule can write for a long time.
SCHEMAS: list[dict[str, object]] = [
    {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 12},
            "age": {"type": "integer"},
        },
        "required": ["name", "age"],
        "additionalProperties": False,
    },
    {
        "type": "object",
        "properties": {
            "ok": {"type": "boolean"},
            "tags": {"type": "array", "items": {"enum": ["red", "green", "blue"]}, "maxItems": 3},
            "level": {"enum": ["low", "high", None]},
        },
        "required": ["ok", "tags", "level"],
    },
    {
        "type": "object",
        "$defs": {"point": {"type": "object", "properties": {"x": {"type": "number"}}}},
        "properties": {
            "points": {"type": "array", "items": {"$ref": "#/$defs/point"}, "maxItems": 2},
            "when": {"type": "string", "format": "date"},
            "kind": {"anyOf": [{"const": "a"}, {"type": "integer"}]},
        },
        "required": ["points", "when", "kind"],
    },
    {"type": "array", "items": {"type": "boolean"}, "minItems": 1, "maxItems": 4},
]


def grammar_of(schema: dict[str, object]) -> OutputGrammar:
    return OutputGrammar(json.dumps(schema))


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_every_answer_validates_against_its_schema(
    tiny_model: Path, runner: EngineRunner, temperature: float
) -> None:
    engine = runner.open(tiny_model, engine_config())
    prompt = engine.tokenize("Answer in JSON:")
    for seed in (1, 2):
        batch = [
            (prompt, SamplingParams(120, temperature, seed=seed, grammar=grammar_of(schema)))
            for schema in SCHEMAS
        ]
        for schema, answer in zip(SCHEMAS, runner.complete_all(engine, batch), strict=True):
            jsonschema.validate(json.loads(answer), schema)


def test_grammar_requests_batch_with_plain_ones_and_change_nothing_of_them(
    tiny_model: Path, runner: EngineRunner
) -> None:
    engine = runner.open(tiny_model, engine_config())
    prompts = [engine.tokenize(f"Request {i} about the module") for i in range(4)]
    plain = [(p, SamplingParams(20, 0.9, seed=i, ignore_eos=True)) for i, p in enumerate(prompts)]
    shaped = [(prompts[0], SamplingParams(80, 0.9, seed=5, grammar=grammar_of(SCHEMAS[0])))]
    alone = [runner.complete(engine, tokens, params) for tokens, params in plain + shaped]
    together = runner.complete_all(engine, plain + shaped)
    assert together == alone
    jsonschema.validate(json.loads(together[-1]), SCHEMAS[0])


def test_a_lazy_grammar_holds_from_its_markup_on(tiny_model: Path, runner: EngineRunner) -> None:
    engine = runner.open(tiny_model, engine_config())
    prompt = engine.tokenize("Call a tool:")
    sampling = SamplingParams(12, 0.9, seed=3, logprobs=0)
    free = runner.loop.run_until_complete(events_of(engine, GenerationRequest(prompt, sampling)))
    pieces = [entry.piece for event in free for entry in event.logprobs]
    # Two ASCII tokens the model writes anyway: the grammar starts after them.
    at = next(i for i in range(1, len(pieces) - 1) if (pieces[i] + pieces[i + 1]).isascii())
    markup = (pieces[at] + pieces[at + 1]).decode()
    text = b"".join(pieces).decode(errors="replace")
    before = text[: text.find(markup)]
    schema = {"type": "object", "properties": {"city": {"enum": ["Oslo", "Lima"]}}}
    lazy = OutputGrammar(json.dumps(schema), prefix=markup, suffix="!", lazy=True)
    shaped = replace(sampling, max_tokens=60, grammar=lazy, logprobs=None)
    answer = runner.complete(engine, prompt, shaped, False)
    assert answer.startswith(before + markup)
    called = answer.removeprefix(before + markup)
    assert called.endswith("!")
    jsonschema.validate(json.loads(called[:-1]), schema)


async def events_of(engine: LlamaCppEngine, request: GenerationRequest) -> list[GenerationEvent]:
    async with engine.generate(request) as stream:
        return [event async for event in stream]


def test_prefix_and_suffix_wrap_the_json(tiny_model: Path, runner: EngineRunner) -> None:
    engine = runner.open(tiny_model, engine_config())
    wrapped = OutputGrammar(json.dumps(SCHEMAS[3]), prefix="<tool_call>", suffix="</tool_call>")
    answer = runner.complete(
        engine, engine.tokenize("Go:"), SamplingParams(60, 0.7, seed=3, grammar=wrapped)
    )
    assert answer.startswith("<tool_call>") and answer.endswith("</tool_call>")
    jsonschema.validate(
        json.loads(answer.removeprefix("<tool_call>")[: -len("</tool_call>")]), SCHEMAS[3]
    )


@pytest.mark.parametrize(
    ("schema", "named"),
    [
        ({"type": "integer", "minimum": 3}, "'minimum' at $"),
        (
            {"properties": {"a": {"type": "array", "uniqueItems": True}}},
            "'uniqueItems' at $.properties.a",
        ),
        ({"type": "string", "format": "email"}, "format 'email'"),
        ({"anyOf": [{"not": {"type": "null"}}]}, "'not' at $.anyOf[0]"),
    ],
)
def test_a_schema_keyword_the_grammar_cannot_enforce_is_refused_by_name(
    schema: dict[str, object], named: str
) -> None:
    with pytest.raises(InvalidGrammarError, match=named.replace("$", r"\$").replace("[", r"\[")):
        check_enforceable(schema)


def test_a_non_strict_schema_keeps_what_a_grammar_enforces() -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 1, "description": "kept: an annotation"},
            "e": {"type": "string", "format": "email", "maxLength": 9},
        },
        "patternProperties": {"x": {}},
        "anyOf": [{"multipleOf": 2}],
    }
    assert enforceable_part(schema) == {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "description": "kept: an annotation"},
            "e": {"type": "string", "maxLength": 9},
        },
        "anyOf": [{}],
    }
    check_enforceable(enforceable_part(schema))


def test_bad_grammars_are_refused_before_queueing(tiny_model: Path, runner: EngineRunner) -> None:
    engine = runner.open(tiny_model, engine_config())
    prompt = engine.tokenize("x")

    async def submit(schema: str) -> None:
        engine.generate(GenerationRequest(prompt, SamplingParams(8, grammar=OutputGrammar(schema))))

    for schema, message in [
        ("[1, 2]", "must be a JSON object"),
        ("{oops", "not valid JSON"),
        ('{"type": "integer", "maximum": 3}', "'maximum' at"),
    ]:
        with pytest.raises(InvalidGrammarError, match=message):
            runner.loop.run_until_complete(submit(schema))
    assert engine.queue_depth() == 0


def test_an_engine_refuses_a_feature_it_does_not_declare(
    tiny_model: Path, runner: EngineRunner
) -> None:
    engine = runner.open(tiny_model, engine_config())
    engine.info = dataclasses.replace(engine.info, features=frozenset())  # as transformers'
    request = GenerationRequest(engine.tokenize("x"), SamplingParams(4, logprobs=0))
    with pytest.raises(UnsupportedFeatureError, match="logprobs"):
        engine.generate(request)


def test_greedy_grammar_answers_are_repeatable(tiny_model: Path, runner: EngineRunner) -> None:
    engine = runner.open(tiny_model, engine_config())
    prompt = engine.tokenize("Twice:")
    params = SamplingParams(80, 0.0, grammar=grammar_of(SCHEMAS[1]))
    first = runner.loop.run_until_complete(collect(engine, prompt, params))
    assert runner.loop.run_until_complete(collect(engine, prompt, params)) == first
