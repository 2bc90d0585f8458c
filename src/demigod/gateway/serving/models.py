"""GET /v1/models: the served models a caller may use."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request

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

    async def list(self, request: Request) -> ModelList:
        """The models the authenticated caller may use, embedded then remote. Raises the
        admission steps' refusals (401)."""
        principal = (await self._front.identify(request, "models")).principal
        return ModelList(
            data=[
                ModelCard(
                    id=served.name,
                    created=served.created,
                    categories=served.categories,
                    context_length=served.engine.info.n_ctx,
                )
                for served in self._embedded.values()
                if principal.may_use(served.name)
            ]
            + [
                ModelCard(id=model.name, created=model.created, categories=model.categories)
                for model in self._remote.values()
                if principal.may_use(model.name)
            ]
        )
