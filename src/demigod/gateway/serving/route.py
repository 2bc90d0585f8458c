"""POST /v1/route: the routing decision a chat request would get, without generating."""

from __future__ import annotations

from fastapi import Request

from demigod.gateway.front_door import Ask, ConsensusRoute, FrontDoor
from demigod.protocol import RouteResponse

CONSENSUS_VERSION = "consensus"  # what /v1/route reports as the version of a consensus


class ServingRoute:
    def __init__(self, front: FrontDoor) -> None:
        self._front = front

    async def decide(self, request: Request) -> RouteResponse:
        """Admit and route the request's chat body. Raises APIError as FrontDoor.admit."""
        routed = await self._front.admit(request, Ask.of("route", request, await request.json()))
        decision = routed.decision
        if isinstance(decision, ConsensusRoute):
            return RouteResponse(
                model=decision.target.label,
                version=CONSENSUS_VERSION,
                category=decision.category,
                reason=decision.reason,
            )
        return RouteResponse(
            model=decision.model.name,
            version=decision.model.version,
            category=decision.category,
            reason=decision.reason,
        )
