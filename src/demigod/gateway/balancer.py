"""Which replica of a model gets a request: session affinity, else least outstanding.

A request with a session key (`X-Session-Id` or the body's `user`) goes to the replica
that wins rendezvous hashing (highest hash of session + replica) among the replicas that
can take traffic now. Rendezvous hashing needs no shared table, so every gateway process
(`--workers N`, or several gateways) sends one session to one replica, and when a replica
leaves only its own sessions move. Without a session key, the replica with the fewest
requests in flight wins; ties go to the one used least recently.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from demigod.gateway.breaker import CircuitBreaker

_use_order = itertools.count()


@dataclass(eq=False)
class Replica:
    """One upstream endpoint of a model and what the gateway knows about it."""

    url: str  # base URL, without /v1
    breaker: CircuitBreaker
    healthy: bool = True  # last active health check (or a failed connect since)
    outstanding: int = 0  # requests in flight from this process
    last_used: int = 0
    _key: bytes = field(init=False, repr=False)
    _lost: asyncio.Future[None] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._key = self.url.encode()

    def lost(self) -> asyncio.Future[None]:
        """Resolves when the gateway next finds this replica unreachable (`mark_lost`)."""
        if self._lost is None or self._lost.done():
            self._lost = asyncio.get_running_loop().create_future()
        return self._lost

    def mark_lost(self) -> None:
        """Wake the requests waiting on this replica's first byte: it cannot send it."""
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)

    def available(self, now: float) -> bool:
        return self.healthy and self.breaker.allows(now)

    def affinity(self, session: str) -> int:
        digest = hashlib.blake2b(session.encode() + b"\0" + self._key, digest_size=8).digest()
        return int.from_bytes(digest, "big")


def choose(
    replicas: Sequence[Replica],
    now: float,
    session: str | None = None,
    exclude: Collection[Replica] = (),
) -> Replica | None:
    """The replica for a request, or None when none is available (unhealthy, breaker open,
    or excluded because it already failed this request)."""
    candidates = [r for r in replicas if r not in exclude and r.available(now)]
    if not candidates:
        return None
    if session:
        return max(candidates, key=lambda r: r.affinity(session))
    return min(candidates, key=lambda r: (r.outstanding, r.last_used))


def mark_used(replica: Replica) -> None:
    replica.last_used = next(_use_order)
