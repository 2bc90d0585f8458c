"""GET /v1/models and /v1/models/{id}: the served models a caller may use."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request

from demigod.api.errors import APIError
from demigod.api.principal import Principal
from demigod.gateway.front_door import FrontDoor
from demigod.gateway.upstreams import RemoteModel
from demigod.mesh import ServedModel
from demigod.protocol import ModelCard, ModelList


class ServingModels:
    def __init__(
        self,
        front: FrontDoor,
        embedded: Mapping[str, ServedModel],
        remote: Mapping[str, RemoteModel],
    ) -> None:
        self._front = front
        self._embedded = embedded
        self._remote = remote

    async def list_models(self, request: Request) -> ModelList:
        """The models the authenticated caller may use, embedded then remote. Raises the
        admission steps' refusals (401)."""
        principal = (await self._front.identify(request, "models")).principal
        return ModelList(data=self._cards(principal))

    async def retrieve(self, request: Request, model_id: str) -> ModelCard:
        """The card of `model_id`, as /v1/models lists it. Raises the admission steps'
        refusals, and APIError 404 for a model that is not served or that the caller may
        not use (as OpenAI answers a model the key cannot see)."""
        principal = (await self._front.identify(request, "models")).principal
        for card in self._cards(principal):
            if card.id == model_id:
                return card
        raise APIError(
            404,
            f"model {model_id!r} does not exist; see GET /v1/models",
            type="not_found_error",
            param="model",
            code="model_not_found",
        )

    def _cards(self, principal: Principal) -> list[ModelCard]:
        return [
            ModelCard(
                id=served.name,
                created=served.created,
                categories=served.categories,
                context_length=served.engine.info.n_ctx,
            )
            for served in self._embedded.values()
            if principal.may_use(served.name)
        ] + [
            ModelCard(id=model.name, created=model.created, categories=model.categories)
            for model in self._remote.values()
            if principal.may_use(model.name)
        ]
