"""Pure logic of the gateway: templates, routing policy, error field paths, config."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import typer
from pydantic import ValidationError

from demigod.api.errors import field_path
from demigod.cli_support import parse_model_option
from demigod.config import Settings, load_settings
from demigod.engines.chat_template import ChatTemplate, ChatTemplateError
from demigod.errors import UnknownModelError
from demigod.protocol import ChatMessage
from demigod.routing.classifier import RequestClassifier
from demigod.routing.policy import RoutingPolicy


def messages(*pairs: tuple[str, str]) -> list[ChatMessage]:
    return [ChatMessage(role=role, content=content) for role, content in pairs]  # type: ignore[arg-type]


def test_default_template_is_documented_plain_text() -> None:
    template = ChatTemplate(None)
    prompt = template.render(
        messages(("system", "Be kind."), ("user", "Hi"), ("assistant", "Hello"), ("user", "Bye"))
    )
    assert prompt == "System: Be kind.\nUser: Hi\nAssistant: Hello\nUser: Bye\nAssistant:"
    assert template.stops == ("\nUser:",)


def test_gguf_template_is_used_with_special_tokens() -> None:
    source = (
        "{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{{ eos_token }}"
        "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    template = ChatTemplate(source, bos_token="<s>", eos_token="</s>")
    assert template.render(messages(("user", "hi"))) == "<s><|user|>hi</s><|assistant|>"
    assert template.stops == ()


def test_template_exception_is_a_clear_error() -> None:
    template = ChatTemplate("{{ raise_exception('roles must alternate') }}")
    with pytest.raises(ChatTemplateError, match="roles must alternate"):
        template.render(messages(("user", "hi")))


def test_sandbox_blocks_unsafe_templates() -> None:
    template = ChatTemplate("{{ messages.__class__.__mro__ }}")
    with pytest.raises(ChatTemplateError):
        template.render(messages(("user", "hi")))


def served(name: str, *categories: str) -> SimpleNamespace:
    return SimpleNamespace(name=name, categories=list(categories))


CLASSIFIER = RequestClassifier()


def policy(models: list[SimpleNamespace], default: str | None = None) -> RoutingPolicy[Any]:
    return RoutingPolicy({m.name: m for m in models}, CLASSIFIER, default)


def test_auto_routes_by_category() -> None:
    mesh = policy([served("talker", "chat"), served("coder", "code"), served("calc", "math")])
    decision = mesh.resolve("auto", "Write a Python function that parses a CSV file.")
    assert (decision.model.name, decision.category) == ("coder", "code")
    assert mesh.resolve("auto", "¿Cuál es la derivada de x^2?").model.name == "calc"
    assert mesh.resolve("auto", "Tell me about your favourite holiday.").model.name == "talker"
    assert mesh.resolve("auto", "```\nprint(1)\n```").reason == "rule: code fence"


def test_explicit_model_always_wins() -> None:
    mesh = policy([served("talker", "chat"), served("coder", "code")])
    decision = mesh.resolve("talker", "def main(): pass")
    assert decision.model.name == "talker"
    assert (decision.category, decision.reason) == (None, "explicit model")


def test_auto_falls_back_to_default_then_chat_then_first() -> None:
    code_prompt = "Implement quicksort in C and explain the pivot choice."
    two = [served("talker", "chat"), served("writer", "prose")]
    assert policy(two).resolve("auto", code_prompt).model.name == "talker"
    assert policy(two, default="writer").resolve("auto", code_prompt).model.name == "writer"
    assert "fallback" in policy(two).resolve("auto", code_prompt).reason
    assert policy([served("w", "prose")]).resolve("auto", code_prompt).model.name == "w"


def test_unknown_model_names_the_alternatives() -> None:
    mesh = policy([served("coder", "code")])
    with pytest.raises(UnknownModelError, match="available: coder, auto"):
        mesh.resolve("gpt-4")
    with pytest.raises(ValueError, match="default_model"):
        policy([], default="missing")
    with pytest.raises(UnknownModelError):
        policy([]).resolve("auto", "hi")


def test_field_paths_read_like_json() -> None:
    assert field_path(("body", "messages", 0, "role")) == "messages[0].role"
    assert field_path(("body", "max_tokens")) == "max_tokens"
    assert field_path(("body",)) == ""


def test_model_option_parsing() -> None:
    config = parse_model_option("coder=/m/c.gguf:code,math")
    assert (config.name, config.path, config.categories) == (
        "coder",
        Path("/m/c.gguf"),
        ["code", "math"],
    )
    assert parse_model_option("x=y.gguf").categories == ["chat"]
    for bad in ("nofile", "=x.gguf", "bad name=x.gguf"):
        with pytest.raises(typer.BadParameter):
            parse_model_option(bad)


def test_config_precedence_env_over_yaml_over_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "mesh.yaml"
    config.write_text("port: 9001\nengine:\n  n_ctx: 4096\n  queue_size: 3\n")
    monkeypatch.setenv("DEMIGOD_ENGINE__QUEUE_SIZE", "7")
    settings = load_settings(config)
    assert settings.port == 9001
    assert settings.engine.n_ctx == 4096
    assert settings.engine.queue_size == 7
    assert settings.host == "127.0.0.1"
    assert load_settings(config, port=9100).port == 9100


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    config = tmp_path / "mesh.yaml"
    config.write_text("engine:\n  n_ctx: -1\n")
    with pytest.raises(ValidationError, match="n_ctx"):
        load_settings(config)
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "missing.yaml")
    (tmp_path / "typo.yaml").write_text("prot: 80\n")
    with pytest.raises(ValidationError, match="prot"):
        load_settings(tmp_path / "typo.yaml")


def test_example_config_matches_the_defaults() -> None:
    example = load_settings(Path(__file__).parents[2] / "mesh.example.yaml")
    assert example.model_dump() == Settings().model_dump()
