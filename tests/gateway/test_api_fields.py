"""README's API table and the request models say the same: every field the models declare
is listed as honoured, every field listed as 400 is refused by the models."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.exceptions import RequestValidationError
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionDeveloperMessageParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionToolMessageParam,
    ChatCompletionUserMessageParam,
)
from pydantic import ValidationError

from demigod.api.errors import validation_error
from demigod.protocol import ChatCompletionRequest, ChatMessage, CompletionRequest

README = Path(__file__).resolve().parents[2] / "README.md"
MINIMAL = {
    "chat": (
        ChatCompletionRequest,
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    ),
    "completions": (CompletionRequest, {"model": "m", "prompt": "hi"}),
}


def table() -> dict[str, dict[str, str]]:
    """field -> {"chat": cell, "completions": cell} from README's request-field table."""
    rows: dict[str, dict[str, str]] = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        for field in re.findall(r"`([a-z_]+)`", cells[0]):
            rows[field] = {"chat": cells[1], "completions": cells[2]}
    return rows


@pytest.mark.parametrize("endpoint", sorted(MINIMAL))
def test_every_declared_field_is_listed_as_honoured(endpoint: str) -> None:
    model, _ = MINIMAL[endpoint]
    rows = table()
    for field in model.model_fields:
        name = model.model_fields[field].alias or field
        assert name in rows, f"README's API table does not list {name!r}"
        assert rows[name][endpoint].startswith("honoured"), (name, rows[name])
    listed_honoured = {name for name, row in rows.items() if row[endpoint].startswith("honoured")}
    declared = {model.model_fields[f].alias or f for f in model.model_fields}
    assert listed_honoured <= declared


@pytest.mark.parametrize("endpoint", sorted(MINIMAL))
def test_every_field_listed_as_400_is_refused_by_name(endpoint: str) -> None:
    model, minimal = MINIMAL[endpoint]
    refused = [name for name, row in table().items() if row[endpoint] == "400"]
    assert "frequency_penalty" in refused
    for name in refused:
        with pytest.raises(ValidationError) as error:
            model.model_validate({**minimal, name: 1})
        assert error.value.errors()[0]["loc"] == (name,)
        assert error.value.errors()[0]["type"] == "extra_forbidden"


@pytest.mark.parametrize(
    "param",
    [
        ChatCompletionSystemMessageParam,
        ChatCompletionDeveloperMessageParam,
        ChatCompletionUserMessageParam,
        ChatCompletionAssistantMessageParam,
        ChatCompletionToolMessageParam,
    ],
)
def test_every_key_the_sdk_puts_in_a_message_is_declared(param: type) -> None:
    """Messages refuse undeclared keys, so each key of the openai SDK's message types must
    be declared (honoured, or accepted only as null: `audio`, `function_call`)."""
    assert set(param.__annotations__) <= set(ChatMessage.model_fields)


HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        # the part's tag ("text") is also one of its keys: the path follows the body
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "x", "y": 1}]}]},
            "messages[0].content[0].y",
        ),
        # a union's matching member is named, not the members that did not match
        (
            {"messages": HI, "tool_choice": {"type": "function", "function": {}}},
            "tool_choice.function.name",
        ),
        (
            {"messages": HI, "response_format": {"type": "json_schema", "json_schema": {}}},
            "response_format.json_schema.name",
        ),
        (
            {"messages": [{"role": "assistant", "function_call": {"name": "f"}}]},
            "messages[0].function_call",
        ),
    ],
)
def test_a_nested_error_names_its_path_in_the_body(body: dict[str, object], param: str) -> None:
    body = {"model": "m", **body}
    with pytest.raises(ValidationError) as error:
        ChatCompletionRequest.model_validate(body)
    errors = [{**e, "loc": ("body", *e["loc"])} for e in error.value.errors()]
    refusal = validation_error(RequestValidationError(errors, body=body))
    assert (refusal.status, refusal.body.error.param) == (400, param)
