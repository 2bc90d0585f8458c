"""The official `openai` SDK against a real server: what users' code will do."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import Server


@pytest.fixture(scope="module")
def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def tokens_of(server: Server, text: str) -> list[int]:
    reply = httpx.post(f"{server.url}/tokenize", json={"model": "tiny", "content": text})
    reply.raise_for_status()
    return reply.json()["tokens"]


GREEDY = {"temperature": 0.0, "extra_body": {"ignore_eos": True}}


def test_models_lists_the_served_model(client: openai.OpenAI) -> None:
    ids = [model.id for model in client.models.list()]
    assert ids == ["tiny"]


def test_a_model_is_retrieved_by_its_id(client: openai.OpenAI) -> None:
    listed = {model.id: model for model in client.models.list()}
    model = client.models.retrieve("tiny")
    assert model == listed["tiny"]
    assert (model.id, model.object, model.owned_by) == ("tiny", "model", "demigod")
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("no-such-model")
    assert missing.value.code == "model_not_found"


def test_completion_usage_matches_the_tokenizer(client: openai.OpenAI, server: Server) -> None:
    prompt = "def fibonacci(n):\n    return"
    reply = client.completions.create(model="tiny", prompt=prompt, max_tokens=12, **GREEDY)
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == len(tokens_of(server, prompt))
    assert reply.usage.completion_tokens == 12
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 12
    assert reply.choices[0].finish_reason == "length"
    assert reply.choices[0].text


def test_an_answer_sent_back_as_history_is_accepted(client: openai.OpenAI) -> None:
    """The SDK sends an earlier answer's message object back as it parsed it (`refusal`,
    `tool_calls` as null); an assistant's name, refusal and null audio are accepted too,
    while unknown keys inside messages are refused (tests/gateway/test_bad_input.py)."""
    ask = [{"role": "user", "content": "Hi!"}]
    first = client.chat.completions.create(model="tiny", messages=ask, max_tokens=4, **GREEDY)
    earlier = first.choices[0].message
    history = [
        *ask,
        earlier,
        {"role": "user", "name": "ana", "content": [{"type": "text", "text": "And?"}]},
        {
            "role": "assistant",
            "name": "bot",
            "content": None,
            "refusal": "I cannot help with that.",
            "audio": None,
            "function_call": None,
        },
        {"role": "user", "content": "Fine."},
    ]
    reply = client.chat.completions.create(model="tiny", messages=history, max_tokens=4, **GREEDY)
    assert reply.choices[0].finish_reason == "length"
    # The refusal is what that assistant turn said: the prompt is longer with it.
    without = [m for m in history if not (isinstance(m, dict) and m.get("refusal"))]
    shorter = client.chat.completions.create(model="tiny", messages=without, max_tokens=4, **GREEDY)
    assert reply.usage is not None and shorter.usage is not None
    assert reply.usage.prompt_tokens > shorter.usage.prompt_tokens


def test_chat_completion_reports_usage_and_a_reply(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"}],
        max_tokens=10,
        **GREEDY,
    )
    assert reply.object == "chat.completion"
    assert reply.choices[0].message.role == "assistant"
    assert reply.usage is not None and reply.usage.completion_tokens == 10
    # system + user lines of the default template, then "Assistant:"
    assert reply.usage.prompt_tokens > 8


def test_auto_routes_to_a_served_model(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "hello"}], max_tokens=3, **GREEDY
    )
    assert reply.model == "tiny"


@pytest.mark.parametrize("kind", ["chat", "text"])
def test_streaming_equals_non_streaming(client: openai.OpenAI, kind: str) -> None:
    if kind == "chat":
        messages = [{"role": "user", "content": "Tell me about snakes."}]
        whole = client.chat.completions.create(
            model="tiny", messages=messages, max_tokens=24, **GREEDY
        )
        stream = client.chat.completions.create(
            model="tiny",
            messages=messages,
            max_tokens=24,
            stream=True,
            stream_options={"include_usage": True},
            **GREEDY,
        )
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        expected, usage = whole.choices[0].message.content, whole.usage
        finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
    else:
        whole = client.completions.create(
            model="tiny", prompt="import os\n", max_tokens=24, **GREEDY
        )
        stream = client.completions.create(
            model="tiny",
            prompt="import os\n",
            max_tokens=24,
            stream=True,
            stream_options={"include_usage": True},
            **GREEDY,
        )
        chunks = list(stream)
        text = "".join(c.choices[0].text for c in chunks if c.choices)
        expected, usage = whole.choices[0].text, whole.usage
        finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
    assert text == expected
    assert finish == "length"
    assert chunks[-1].usage == usage
    assert len(chunks) > 3  # really streamed, not one blob


def test_stream_ends_with_done(server: Server) -> None:
    body = {"model": "tiny", "prompt": "x", "max_tokens": 3, "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/completions", json=body) as reply:
        # split at "\n" only: iter_lines also cuts at U+2028 inside a JSON string
        lines = [line for line in reply.read().decode().split("\n") if line]
    assert reply.headers["content-type"].startswith("text/event-stream")
    assert lines[-1] == "data: [DONE]"
    assert all(line.startswith("data: ") for line in lines)


def test_stop_sequence_cuts_the_output(client: openai.OpenAI) -> None:
    prompt = "The history of the"
    full = client.completions.create(model="tiny", prompt=prompt, max_tokens=30, **GREEDY)
    text = full.choices[0].text
    assert len(text) > 12
    stop = text[8:11]
    cut = client.completions.create(
        model="tiny", prompt=prompt, max_tokens=30, stop=[stop], **GREEDY
    )
    assert cut.choices[0].text == text[: text.find(stop)]
    assert cut.choices[0].finish_reason == "stop"
    streamed = client.completions.create(
        model="tiny", prompt=prompt, max_tokens=30, stop=stop, stream=True, **GREEDY
    )
    assert "".join(c.choices[0].text for c in streamed if c.choices) == text[: text.find(stop)]


def test_seed_makes_sampling_reproducible(client: openai.OpenAI) -> None:
    def sample(seed: int) -> str:
        reply = client.completions.create(
            model="tiny",
            prompt="Once upon a time",
            max_tokens=20,
            temperature=0.9,
            top_p=0.95,
            seed=seed,
            extra_body={"ignore_eos": True},
        )
        return reply.choices[0].text

    first, again, other = sample(7), sample(7), sample(8)
    assert first == again
    assert first != other


def test_ignore_eos_reaches_max_tokens(client: openai.OpenAI) -> None:
    # Without ignore_eos a random model may draw EOS early; with it, never.
    for seed in range(3):
        reply = client.completions.create(
            model="tiny", prompt="a", max_tokens=40, seed=seed, extra_body={"ignore_eos": True}
        )
        assert reply.usage is not None and reply.usage.completion_tokens == 40


def test_echo_prepends_the_prompt(client: openai.OpenAI) -> None:
    reply = client.completions.create(
        model="tiny", prompt="echo me", max_tokens=2, echo=True, **GREEDY
    )
    assert reply.choices[0].text.startswith("echo me")
