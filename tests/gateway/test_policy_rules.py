"""routing.rules: tenant, category and prompt length send `auto` to a model; first match wins."""

from __future__ import annotations

import pytest

from demigod.config import ModelConfig, RoutingRule
from demigod.errors import UnknownModelError
from demigod.routing.classifier import RequestClassifier
from demigod.routing.policy import (
    RoutingPolicy,
    RuleTargetError,
    estimate_tokens,
)

CODE_PROMPT = "```python\nprint(1)\n```"
CHAT_PROMPT = "x" * 40  # no rule fires on it; long enough to count 10 estimated tokens


def models(*names: str) -> dict[str, ModelConfig]:
    return {n: ModelConfig(name=n, path=f"{n}.gguf", categories=["chat"]) for n in names}  # type: ignore[arg-type]


CLASSIFIER = RequestClassifier()  # trained once, on first use, for every test here


def policy(*rules: RoutingRule, extra: tuple[str, ...] = ()) -> RoutingPolicy[ModelConfig]:
    return RoutingPolicy(
        models("general", "coder", "big"),
        CLASSIFIER,
        rules=rules,
        extra_targets=extra,
    )


def test_first_matching_rule_wins_and_the_reason_names_it() -> None:
    chosen = policy(
        RoutingRule(tenant="acme", category="code", model="coder"),
        RoutingRule(category="code", model="big"),
    )
    acme = chosen.resolve("auto", CODE_PROMPT, tenant="acme")
    assert acme.model.name == "coder"
    assert acme.reason.startswith("rule 0 (tenant=acme, category=code); rule: code fence")
    other = chosen.resolve("auto", CODE_PROMPT, tenant="globex")
    assert other.model.name == "big" and other.reason.startswith("rule 1 (category=code)")
    assert chosen.resolve("auto", CODE_PROMPT).model.name == "big"  # anonymous by default


def test_prompt_length_bounds_are_inclusive_estimated_tokens() -> None:
    chosen = policy(
        RoutingRule(max_prompt_tokens=10, model="coder"),
        RoutingRule(min_prompt_tokens=11, max_prompt_tokens=20, model="big"),
    )
    assert estimate_tokens(CHAT_PROMPT) == 10
    assert chosen.resolve("auto", CHAT_PROMPT).model.name == "coder"
    assert chosen.resolve("auto", CHAT_PROMPT + "y").model.name == "big"
    decision = chosen.resolve("auto", "z" * 81)  # 21 tokens: no rule, category match
    assert decision.model.name == "general" and "rule" not in decision.reason.split(";")[0]


def test_explicit_model_beats_every_rule() -> None:
    chosen = policy(RoutingRule(model="coder"))
    assert chosen.resolve("big", CODE_PROMPT, tenant="acme").model.name == "big"
    assert chosen.resolve("auto", CODE_PROMPT).model.name == "coder"
    with pytest.raises(UnknownModelError):
        chosen.resolve("nope", CODE_PROMPT)


def test_a_rule_naming_an_unknown_model_is_a_config_error() -> None:
    with pytest.raises(ValueError, match=r"routing.rules\[1\].model 'ghost'"):
        policy(RoutingRule(model="coder"), RoutingRule(category="math", model="ghost"))


def test_a_rule_may_target_a_consensus_group_the_caller_resolves() -> None:
    chosen = policy(RoutingRule(category="code", model="panel"), extra=("panel",))
    with pytest.raises(RuleTargetError) as raised:
        chosen.resolve("auto", CODE_PROMPT)
    assert raised.value.target == "panel" and raised.value.category == "code"
