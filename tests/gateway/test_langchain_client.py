"""A second real client: LangChain's `ChatOpenAI` drives chat, streaming, tool calls and
structured output against a live `demigod serve`."""

from __future__ import annotations

import jsonschema
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI

from tests.conftest import Server
from tests.gateway.test_structured_output import SCHEMAS, WEATHER


@pytest.fixture(scope="module")
def chat(server: Server) -> ChatOpenAI:
    return ChatOpenAI(
        model="tiny",
        base_url=f"{server.url}/v1",
        api_key="unused",  # type: ignore[arg-type]
        max_retries=0,
        temperature=0.8,
        seed=3,
        max_completion_tokens=120,
    )


def test_invoke_and_stream(chat: ChatOpenAI) -> None:
    short = chat.bind(max_completion_tokens=8, temperature=0)
    whole = short.invoke("Tell me about snakes.")
    assert isinstance(whole, AIMessage) and whole.content
    streamed = "".join(str(chunk.content) for chunk in short.stream("Tell me about snakes."))
    assert streamed == whole.content


def test_tool_calls_come_back_as_langchain_tool_calls(chat: ChatOpenAI) -> None:
    bound = chat.bind_tools([WEATHER], tool_choice="get_weather")
    question = HumanMessage("What is the weather in Lima?")
    answer = bound.invoke([question])
    assert isinstance(answer, AIMessage) and len(answer.tool_calls) == 1
    call = answer.tool_calls[0]
    assert call["name"] == "get_weather"
    jsonschema.validate(call["args"], WEATHER["function"]["parameters"])  # type: ignore[index]
    result = ToolMessage('{"temperature": 19}', tool_call_id=call["id"])
    follow_up = chat.bind(max_completion_tokens=6, temperature=0).invoke([question, answer, result])
    assert isinstance(follow_up, AIMessage) and not follow_up.tool_calls


def test_streamed_tool_calls_are_assembled(chat: ChatOpenAI) -> None:
    bound = chat.bind_tools([WEATHER], tool_choice="required")
    chunks = list(bound.stream("What is the weather in Lima?"))
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole = whole + chunk  # type: ignore[assignment]
    assert isinstance(whole, AIMessage) and [c["name"] for c in whole.tool_calls] == ["get_weather"]
    jsonschema.validate(whole.tool_calls[0]["args"], WEATHER["function"]["parameters"])  # type: ignore[index]


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_structured_output_validates(chat: ChatOpenAI, name: str) -> None:
    schema = {"title": name, **SCHEMAS[name]}
    shaped = chat.with_structured_output(schema, method="json_schema", strict=True)
    answer = shaped.invoke("Answer in JSON.")
    assert isinstance(answer, dict)
    jsonschema.validate(answer, SCHEMAS[name])
