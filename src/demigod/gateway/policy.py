"""The routing policy: which served model answers a request.

A request names a model, or `auto`. Today `auto` goes to the configured default model, else
the first model serving the `chat` category, else the first model; request classification
(code, math, chat, long_context) plugs in here.
"""

from __future__ import annotations

from collections.abc import Mapping

from demigod.mesh import ServedModel

AUTO = "auto"


class UnknownModelError(LookupError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            f"model {name!r} does not exist; available: {', '.join(known) or 'none'}, auto"
        )
        self.name = name


class RoutingPolicy:
    def __init__(self, models: Mapping[str, ServedModel], default: str | None = None) -> None:
        if default is not None and default not in models:
            raise ValueError(f"default_model {default!r} is not among the served models")
        self._models = models
        self._default = default

    def resolve(self, requested: str) -> ServedModel:
        """The model that answers a request for `requested`. Raises UnknownModelError."""
        if requested == AUTO:
            return self._auto()
        if requested in self._models:
            return self._models[requested]
        raise UnknownModelError(requested, sorted(self._models))

    def _auto(self) -> ServedModel:
        if self._default is not None:
            return self._models[self._default]
        chat = [model for model in self._models.values() if "chat" in model.categories]
        candidates = chat or list(self._models.values())
        if not candidates:
            raise UnknownModelError(AUTO, [])
        return candidates[0]
