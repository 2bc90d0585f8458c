"""The routing policy: which served model answers a request.

An explicit model name always wins; `name@alias` and `name@version` pick a version of it
(aliases come from the registry: `stable`, `candidate`, ...) and must name the version
that is served. `auto` classifies the prompt (routing.classifier), then tries the
configured rules in order (tenant, category, estimated prompt tokens → model; the first
that matches wins), then picks the first model that serves that category; when none does,
the configured default model, else the first `chat` model, else the first model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from demigod.api.principal import ANONYMOUS_TENANT
from demigod.config import RoutingRule
from demigod.errors import UnknownModelError
from demigod.routing.classifier import RequestClassifier
from demigod.routing.versions import PIN_SEPARATOR

AUTO = "auto"


class Routable(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def categories(self) -> list[str]: ...

    @property
    def version(self) -> str: ...


M = TypeVar("M", bound=Routable)
M_co = TypeVar("M_co", bound=Routable, covariant=True)


def unknown_model(name: str, known: list[str], detail: str | None = None) -> UnknownModelError:
    """The error for a model name that is not served, listing those that are."""
    available = ", ".join([*known, AUTO]) if known else "none"
    return UnknownModelError(
        f"{detail or f'model {name!r} does not exist'}; available: {available}"
    )


class RuleTargetError(LookupError):
    """A rule sent `auto` to a target that is not a single model (a consensus group): the
    caller that knows such targets handles it."""

    def __init__(self, target: str, category: str, reason: str) -> None:
        super().__init__(f"rule target {target!r} is not a served model")
        self.target, self.category, self.reason = target, category, reason


@dataclass(frozen=True)
class RouteDecision(Generic[M_co]):
    model: M_co
    category: str | None
    reason: str
    confidence: float | None = None


def estimate_tokens(prompt: str, chars_per_token: float = 4.0) -> int:
    """Prompt tokens as the rules count them: characters / `chars_per_token`, rounded up.
    (Routing happens before a model, hence a tokenizer, is chosen.)"""
    return math.ceil(len(prompt) / chars_per_token)


def rule_matches(rule: RoutingRule, tenant: str, category: str, prompt_tokens: int) -> bool:
    """Whether every condition `rule` sets holds; an unset condition matches anything."""
    return (
        (rule.tenant is None or rule.tenant == tenant)
        and (rule.category is None or rule.category == category)
        and (rule.min_prompt_tokens is None or prompt_tokens >= rule.min_prompt_tokens)
        and (rule.max_prompt_tokens is None or prompt_tokens <= rule.max_prompt_tokens)
    )


def describe_rule(index: int, rule: RoutingRule) -> str:
    """`rule 2 (tenant=acme, category=code, tokens<=512)`: how a decision's reason names it."""
    conditions = [
        f"{field}={value}"
        for field, value in (("tenant", rule.tenant), ("category", rule.category))
        if value is not None
    ]
    if rule.min_prompt_tokens is not None:
        conditions.append(f"tokens>={rule.min_prompt_tokens}")
    if rule.max_prompt_tokens is not None:
        conditions.append(f"tokens<={rule.max_prompt_tokens}")
    return f"rule {index} ({', '.join(conditions) or 'any'})"


class RoutingPolicy(Generic[M]):
    def __init__(
        self,
        models: Mapping[str, M],
        classifier: RequestClassifier,
        default: str | None = None,
        aliases: Mapping[str, Mapping[str, str]] | None = None,
        *,
        rules: Sequence[RoutingRule] = (),
        chars_per_token: float = 4.0,
        extra_targets: Sequence[str] = (),
    ) -> None:
        """`rules` may name a served model or one of `extra_targets` (consensus groups).

        Raises ValueError when the default or a rule names neither."""
        if default is not None and default not in models:
            raise ValueError(f"default_model {default!r} is not among the served models")
        for index, rule in enumerate(rules):
            if rule.model not in models and rule.model not in extra_targets:
                raise ValueError(
                    f"routing.rules[{index}].model {rule.model!r} is not among the served models"
                )
        self._models = models
        self._classifier = classifier
        self._default = default
        self._aliases = aliases or {}
        self._rules = list(rules)
        self._chars_per_token = chars_per_token

    def resolve(
        self, requested: str, prompt: str = "", tenant: str = ANONYMOUS_TENANT
    ) -> RouteDecision[M]:
        """The model that answers a request for `requested` (a name or `auto`) with `prompt`
        from `tenant`.

        Raises UnknownModelError for a name that is not served, and RuleTargetError when
        the matching rule names a consensus group rather than a model.
        """
        if PIN_SEPARATOR in requested:
            return self._resolve_version(requested)
        if requested != AUTO:
            if requested not in self._models:
                raise unknown_model(requested, sorted(self._models))
            return RouteDecision(self._models[requested], None, "explicit model")
        if not self._models:
            raise unknown_model(AUTO, [])
        found = self._classifier.classify(prompt)
        if self._rules:
            tokens = estimate_tokens(prompt, self._chars_per_token)
            for index, rule in enumerate(self._rules):
                if rule_matches(rule, tenant, found.category, tokens):
                    reason = f"{describe_rule(index, rule)}; {found.reason}"
                    if rule.model not in self._models:
                        raise RuleTargetError(rule.model, found.category, reason)
                    return RouteDecision(
                        self._models[rule.model], found.category, reason, found.confidence
                    )
        for model in self._models.values():
            if found.category in model.categories:
                return RouteDecision(model, found.category, found.reason, found.confidence)
        return RouteDecision(
            self._fallback(),
            found.category,
            f"{found.reason}; no {found.category} model, fallback",
            found.confidence,
        )

    def implicit_model(self) -> str | None:
        """The model a request that names none is for (the tokenizer endpoints, as
        lm-evaluation-harness calls them): the default model, else the only one served."""
        if self._default is not None:
            return self._default
        return next(iter(self._models)) if len(self._models) == 1 else None

    def aliases(self, name: str) -> Mapping[str, str]:
        """Model `name`'s registry aliases: alias -> version label."""
        return self._aliases.get(name, {})

    def _resolve_version(self, requested: str) -> RouteDecision[M]:
        name, _, ref = requested.partition(PIN_SEPARATOR)
        if name not in self._models:
            raise unknown_model(name, sorted(self._models))
        model = self._models[name]
        label = self._aliases.get(name, {}).get(ref, ref)
        if label != model.version:
            known = self._aliases.get(name, {})
            what = f"alias {ref!r} is version {label!r}" if ref in known else f"{ref!r}"
            raise unknown_model(
                requested,
                [f"{name}@{model.version}"]
                + [f"{name}@{alias}" for alias, v in sorted(known.items()) if v == model.version],
                detail=f"{name}: {what} is not served",
            )
        return RouteDecision(model, None, f"explicit model, version {label}")

    def _fallback(self) -> M:
        if self._default is not None:
            return self._models[self._default]
        chat = [model for model in self._models.values() if "chat" in model.categories]
        return (chat or list(self._models.values()))[0]
