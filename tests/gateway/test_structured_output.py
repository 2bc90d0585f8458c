"""Structured output, tool calls, logprobs and `n` through real servers, with the official
SDK's typed objects: `demigod serve`, and `demigod worker` behind `demigod gateway`.

The tiny model is random: left alone it never writes JSON nor calls a tool. Every answer
here parses and validates because the grammar in its sampler chain allows nothing else.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonschema
import openai
import pytest

from demigod.processes import free_port
from tests.conftest import Server
from tests.engines.test_tool_calls import WEATHER_PARAMETERS
from tests.gateway.test_failover import start, start_worker
from tests.gateway.test_health_and_metrics import scrape

SCHEMAS: dict[str, dict[str, object]] = {
    "person": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 12},
            "age": {"type": "integer"},
            "admin": {"type": "boolean"},
        },
        "required": ["name", "age", "admin"],
        "additionalProperties": False,
    },
    "choices": {
        "type": "object",
        "properties": {
            "colour": {"enum": ["red", "green", "blue"]},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 5}, "maxItems": 3},
        },
        "required": ["colour", "tags"],
        "additionalProperties": False,
    },
    "nested": {
        "type": "object",
        "$defs": {"point": {"type": "object", "properties": {"x": {"type": "number"}}}},
        "properties": {
            "origin": {"$ref": "#/$defs/point"},
            "day": {"type": "string", "format": "date"},
            "note": {"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 6}]},
        },
        "required": ["origin", "day", "note"],
        "additionalProperties": False,
    },
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "parameters": WEATHER_PARAMETERS,
        "strict": True,
    },
}
ADD = {
    "type": "function",
    "function": {
        "name": "add",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
            "additionalProperties": False,
        },
    },
}
ASK = [{"role": "user", "content": "What is the weather in Lima? Answer in JSON."}]


@pytest.fixture(scope="module")
def split(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`demigod worker` behind `demigod gateway`: the gateway passes bodies through."""
    tmp_path = tmp_path_factory.mktemp("split")
    worker_port, gateway_port = free_port(), free_port()
    processes: list[subprocess.Popen[bytes]] = [start_worker(tiny_model, worker_port, tmp_path)]
    upstream = f"tiny=http://127.0.0.1:{worker_port}"
    processes.append(start(["gateway", "--upstream", upstream], gateway_port, tmp_path, "/readyz"))
    yield f"http://127.0.0.1:{gateway_port}"
    for process in processes:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture(params=["serve", "worker+gateway"])
def client(request: pytest.FixtureRequest, server: Server) -> openai.OpenAI:
    url = server.url if request.param == "serve" else request.getfixturevalue("split")
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)


def schema_format(name: str) -> dict[str, object]:
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": SCHEMAS[name], "strict": True},
    }


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_json_schema_answers_validate_streamed_or_not(client: openai.OpenAI, name: str) -> None:
    common = {"model": "tiny", "messages": ASK, "temperature": 0.8, "max_tokens": 150}
    for seed in (1, 2):
        whole = client.chat.completions.create(
            **common, seed=seed, response_format=schema_format(name)
        )
        assert whole.choices[0].finish_reason == "stop"
        jsonschema.validate(json.loads(whole.choices[0].message.content or ""), SCHEMAS[name])
        stream = client.chat.completions.create(
            **common, seed=seed, response_format=schema_format(name), stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert json.loads(text) == json.loads(whole.choices[0].message.content or "")


def test_json_object_answers_are_objects(client: openai.OpenAI) -> None:
    for seed in (1, 2, 3):
        reply = client.chat.completions.create(
            model="tiny",
            messages=ASK,
            response_format={"type": "json_object"},
            temperature=0.3,
            seed=seed,
            max_tokens=200,
        )
        assert isinstance(json.loads(reply.choices[0].message.content or ""), dict)


def test_text_completions_take_a_response_format_too(client: openai.OpenAI) -> None:
    reply = client.completions.create(
        model="tiny",
        prompt="Person as JSON:",
        max_tokens=150,
        temperature=0.8,
        seed=5,
        extra_body={"response_format": schema_format("person")},
    )
    jsonschema.validate(json.loads(reply.choices[0].text), SCHEMAS["person"])


@pytest.mark.parametrize(
    "tool_choice", ["required", {"type": "function", "function": {"name": "get_weather"}}]
)
def test_a_required_tool_call_is_well_formed_and_the_next_turn_reads_its_result(
    client: openai.OpenAI, tool_choice: object
) -> None:
    tools = [WEATHER, ADD]
    reply = client.chat.completions.create(
        model="tiny",
        messages=ASK,
        tools=tools,
        tool_choice=tool_choice,
        temperature=0.8,
        seed=3,
        max_tokens=120,
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    (call,) = choice.message.tool_calls
    if isinstance(tool_choice, dict):
        assert call.function.name == "get_weather"
    spec = next(t for t in tools if t["function"]["name"] == call.function.name)
    jsonschema.validate(json.loads(call.function.arguments), spec["function"]["parameters"])
    following = client.chat.completions.create(
        model="tiny",
        messages=[
            *ASK,
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 19}'},
        ],
        tools=tools,
        tool_choice="none",
        max_tokens=8,
        temperature=0,
    )
    assert following.choices[0].message.tool_calls is None
    assert following.choices[0].finish_reason in ("stop", "length")


def test_tool_calls_stream_as_deltas(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="tiny",
        messages=ASK,
        tools=[WEATHER],
        tool_choice="required",
        temperature=0.8,
        seed=4,
        max_tokens=120,
        stream=True,
    )
    chunks = [chunk for chunk in stream if chunk.choices]
    deltas = [d for c in chunks for d in c.choices[0].delta.tool_calls or ()]
    assert (
        deltas and deltas[0].id and deltas[0].function and deltas[0].function.name == "get_weather"
    )
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
    jsonschema.validate(json.loads(arguments), WEATHER["function"]["parameters"])
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert not any(c.choices[0].delta.content for c in chunks)


def test_auto_and_none_leave_the_random_model_to_write_text(client: openai.OpenAI) -> None:
    for tool_choice in ("auto", "none"):
        reply = client.chat.completions.create(
            model="tiny",
            messages=ASK,
            tools=[WEATHER],
            tool_choice=tool_choice,
            temperature=0,
            max_tokens=6,
        )
        assert reply.choices[0].message.tool_calls is None
        assert reply.choices[0].message.content


def test_chat_logprobs_give_each_token_and_its_alternatives(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="tiny", messages=ASK, logprobs=True, top_logprobs=3, temperature=0, max_tokens=6
    )
    choice = reply.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content is not None
    entries = choice.logprobs.content
    assert len(entries) == 6
    assert (
        bytes(b for entry in entries for b in entry.bytes or ()).decode() == choice.message.content
    )
    for entry in entries:
        assert [top.logprob for top in entry.top_logprobs] == sorted(
            (top.logprob for top in entry.top_logprobs), reverse=True
        )
        assert len(entry.top_logprobs) == 3 and entry.top_logprobs[0].logprob == entry.logprob
    streamed = client.chat.completions.create(
        model="tiny", messages=ASK, logprobs=True, temperature=0, max_tokens=6, stream=True
    )
    streamed_entries = [
        e
        for c in streamed
        if c.choices and c.choices[0].logprobs
        for e in c.choices[0].logprobs.content or ()
    ]
    assert [e.logprob for e in streamed_entries] == pytest.approx([e.logprob for e in entries])


def test_echo_scores_a_prompt_of_token_ids(client: openai.OpenAI, server: Server) -> None:
    tokens = httpx.post(
        f"{server.url}/tokenize", json={"model": "tiny", "content": "The cat sat"}
    ).json()["tokens"]
    reply = client.completions.create(
        model="tiny", prompt=[tokens], echo=True, logprobs=1, max_tokens=1, temperature=0
    )
    logprobs = reply.choices[0].logprobs
    assert (
        logprobs is not None and logprobs.tokens is not None and logprobs.token_logprobs is not None
    )
    assert reply.choices[0].text.startswith("The cat sat")
    assert len(logprobs.tokens) == len(tokens) + 1
    assert logprobs.token_logprobs[0] is None and all(v < 0 for v in logprobs.token_logprobs[1:])
    assert logprobs.text_offset is not None and logprobs.text_offset[:2] == [
        0,
        len(logprobs.tokens[0]),
    ]
    assert reply.usage is not None and reply.usage.prompt_tokens == len(tokens)


def test_n_choices_are_sampled_as_separate_sequences(client: openai.OpenAI) -> None:
    sampled = {"model": "tiny", "messages": ASK, "temperature": 1.0, "seed": 7, "max_tokens": 8}
    sampled["extra_body"] = {"ignore_eos": True}
    reply = client.chat.completions.create(n=3, **sampled)  # type: ignore[call-overload]
    assert [choice.index for choice in reply.choices] == [0, 1, 2]
    texts = [choice.message.content for choice in reply.choices]
    assert len(set(texts)) == 3
    assert reply.usage is not None and reply.usage.completion_tokens == 24
    again = client.chat.completions.create(n=3, **sampled)  # type: ignore[call-overload]
    assert [choice.message.content for choice in again.choices] == texts
    stream = client.chat.completions.create(n=2, stream=True, **sampled)  # type: ignore[call-overload]
    streamed = ["", ""]
    for chunk in stream:
        for choice in chunk.choices:
            streamed[choice.index] += choice.delta.content or ""
    assert streamed == texts[:2]


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "n",
                        "strict": True,
                        "schema": {"type": "integer", "minimum": 1},
                    },
                }
            },
            "response_format",
        ),
        ({"top_logprobs": 2}, "top_logprobs"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice",
        ),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"n": 9}, "n"),
        ({"response_format": {"type": "json_object"}, "ignore_eos": True}, "ignore_eos"),
        ({"response_format": {"type": "json_object"}, "tools": [WEATHER]}, "response_format"),
    ],
)
def test_what_cannot_be_honoured_is_a_400_naming_the_field(
    client: openai.OpenAI, extra: dict[str, object], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="tiny", messages=ASK, max_tokens=4, extra_body=extra)
    assert refused.value.body["param"] == param  # type: ignore[index]


def test_a_token_id_outside_the_vocabulary_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.completions.create(model="tiny", prompt=[[1, 10_000_000]], max_tokens=1)
    assert refused.value.body["param"] == "prompt"  # type: ignore[index]


def test_a_tool_calling_conversation_resumes_from_the_state_cache(server: Server) -> None:
    """The next turn (the call, its result) extends the prompt the first turn saved."""
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    common = {"model": "tiny", "tools": [WEATHER], "temperature": 0.8, "max_tokens": 120}
    question = [{"role": "user", "content": "Weather in Oslo, then in Lima?"}]
    first = client.chat.completions.create(
        messages=question, tool_choice="required", seed=11, **common
    )
    call = first.choices[0].message
    assert call.tool_calls
    hits = cache_hits(server)
    second = client.chat.completions.create(
        messages=[
            *question,
            call.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.tool_calls[0].id, "content": '{"temp": 3}'},
        ],
        tool_choice="required",
        seed=12,
        **common,
    )
    assert second.choices[0].message.tool_calls
    assert cache_hits(server) == hits + 1
    assert second.usage is not None and first.usage is not None
    assert second.usage.prompt_tokens > first.usage.prompt_tokens


def cache_hits(server: Server) -> float:
    return scrape(server).get('demigod_state_cache_hits_total{model="tiny",tier="ram"}', 0.0)


def test_max_completion_tokens_is_honoured(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="tiny",
        messages=ASK,
        max_completion_tokens=5,
        temperature=0,
        extra_body={"ignore_eos": True},
    )
    assert reply.usage is not None and reply.usage.completion_tokens == 5
    assert reply.choices[0].finish_reason == "length"
