"""The routing policy: which served model answers a request.

An explicit model name always wins; `name@alias` and `name@version` pick a version of it
(aliases come from the registry: `stable`, `candidate`, ...) and must name the version
that is served. `auto` classifies the prompt (gateway.classifier) and
picks the first model that serves that category; when none does, the configured default
model, else the first `chat` model, else the first model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from demigod.gateway.classifier import RequestClassifier

AUTO = "auto"


class Routable(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def categories(self) -> list[str]: ...

    @property
    def version(self) -> str: ...


M = TypeVar("M", bound=Routable)


VERSION_SEPARATOR = "@"


class UnknownModelError(LookupError):
    def __init__(self, name: str, known: list[str], detail: str | None = None) -> None:
        available = ", ".join([*known, AUTO]) if known else "none"
        what = detail or f"model {name!r} does not exist"
        super().__init__(f"{what}; available: {available}")
        self.name = name


@dataclass(frozen=True)
class RouteDecision(Generic[M]):
    model: M
    category: str | None
    reason: str
    confidence: float | None = None


class RoutingPolicy(Generic[M]):
    def __init__(
        self,
        models: Mapping[str, M],
        classifier: RequestClassifier,
        default: str | None = None,
        aliases: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        if default is not None and default not in models:
            raise ValueError(f"default_model {default!r} is not among the served models")
        self._models = models
        self._classifier = classifier
        self._default = default
        self._aliases = aliases or {}

    def resolve(self, requested: str, prompt: str = "") -> RouteDecision[M]:
        """The model that answers a request for `requested` (a name or `auto`) with `prompt`.

        Raises UnknownModelError for a name that is not served.
        """
        if VERSION_SEPARATOR in requested:
            return self._resolve_version(requested)
        if requested != AUTO:
            if requested not in self._models:
                raise UnknownModelError(requested, sorted(self._models))
            return RouteDecision(self._models[requested], None, "explicit model")
        if not self._models:
            raise UnknownModelError(AUTO, [])
        found = self._classifier.classify(prompt)
        for model in self._models.values():
            if found.category in model.categories:
                return RouteDecision(model, found.category, found.reason, found.confidence)
        return RouteDecision(
            self._fallback(),
            found.category,
            f"{found.reason}; no {found.category} model, fallback",
            found.confidence,
        )

    def _resolve_version(self, requested: str) -> RouteDecision[M]:
        name, _, ref = requested.partition(VERSION_SEPARATOR)
        if name not in self._models:
            raise UnknownModelError(name, sorted(self._models))
        model = self._models[name]
        label = self._aliases.get(name, {}).get(ref, ref)
        if label != model.version:
            known = self._aliases.get(name, {})
            what = f"alias {ref!r} is version {label!r}" if ref in known else f"{ref!r}"
            raise UnknownModelError(
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
