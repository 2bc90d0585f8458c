"""What the generating serving classes hand the routes: the typed answer and the route it
took, for the `x-demigod-route` header."""

from __future__ import annotations

from dataclasses import dataclass

from demigod.gateway.runner import Generated
from demigod.protocol import ConsensusChatCompletion


@dataclass(frozen=True)
class Answer:
    body: Generated | ConsensusChatCompletion
    route: str  # the x-demigod-route header's value
