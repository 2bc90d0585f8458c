"""Versions of one model name: which of `stable` and `candidate` answers a request.

The candidate gets `weight` (0-1) of the sessions. A session (the `X-Session-Id` header,
else the request's `user`) is placed by a stable hash, so every gateway process puts it on
the same version, and it is then pinned: raising the weight never moves a conversation
whose recurrent state lives in the stable version. Only a rollback (weight 0) moves
candidate sessions back to stable. A request without a session is split at random.
"""

from __future__ import annotations

import hashlib
import random
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, Literal, Protocol, TypeVar

from demigod.errors import UnknownVersionError

Alias = Literal["stable", "candidate"]
STABLE: Alias = "stable"
CANDIDATE: Alias = "candidate"
PIN_SEPARATOR = "@"  # `model@version` asks for one version explicitly


class Versioned(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...


V = TypeVar("V", bound=Versioned)


def split_pinned(requested: str) -> tuple[str, str | None]:
    """`chat@v2` → (`chat`, `v2`); `chat` → (`chat`, None)."""
    name, separator, version = requested.partition(PIN_SEPARATOR)
    return (name, version) if separator and version else (requested, None)


def session_fraction(model: str, session: str) -> float:
    """A uniform number in [0, 1) fixed by (model, session): the same in every process."""
    digest = hashlib.blake2b(f"{model}\0{session}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def choose_alias(fraction: float, weight: float) -> Alias:
    """`candidate` when `fraction` falls under the candidate's `weight` (0-1). Monotone:
    a fraction on the candidate at weight w stays there at every weight above w."""
    return CANDIDATE if fraction < weight else STABLE


@dataclass(frozen=True)
class VersionChoice(Generic[V]):
    served: V
    alias: Alias
    reason: str


class VersionRouter(Generic[V]):
    """Candidate versions and their weights, and the sessions pinned to a version.

    `weights` holds the candidate share (0-1) per model name; models without a candidate
    always answer with their stable version. Not thread-safe: used on the event loop.
    """

    def __init__(
        self, candidates: Mapping[str, V], *, max_pins: int = 100_000, seed: int | None = None
    ) -> None:
        self._candidates = dict(candidates)
        self._weights: dict[str, float] = {}
        self._pins: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._max_pins = max_pins
        self._random = random.Random(seed)

    @property
    def candidates(self) -> Mapping[str, V]:
        return self._candidates

    def weight(self, model: str) -> float:
        return self._weights.get(model, 0.0) if model in self._candidates else 0.0

    def set_weight(self, model: str, weight: float) -> None:
        """Route `weight` (clamped to 0-1) of `model`'s new sessions to its candidate."""
        self._weights[model] = min(1.0, max(0.0, weight))

    def choose(self, stable: V, session: str | None) -> VersionChoice[V]:
        """The version of `stable.name` that answers a request of `session`."""
        candidate = self._candidates.get(stable.name)
        if candidate is None:
            return VersionChoice(stable, STABLE, "")
        weight = self.weight(stable.name)
        by_version: dict[str, tuple[V, Alias]] = {
            stable.version: (stable, STABLE),
            candidate.version: (candidate, CANDIDATE),
        }
        if session is not None:
            key = (stable.name, session)
            pinned = self._pins.get(key)
            if pinned in by_version and not (pinned == candidate.version and weight <= 0):
                self._pins.move_to_end(key)
                served, pinned_alias = by_version[pinned]
                return VersionChoice(served, pinned_alias, f"canary {weight:.0%}: session pinned")
            alias = choose_alias(session_fraction(stable.name, session), weight)
            self._pin(key, candidate.version if alias == CANDIDATE else stable.version)
            how = "session hash"
        else:
            alias = choose_alias(self._random.random(), weight)
            how = "no session, random"
        chosen = candidate if alias == CANDIDATE else stable
        return VersionChoice(chosen, alias, f"canary {weight:.0%}: {how}")

    def pinned(self, stable: V, ref: str, aliases: Mapping[str, str] | None = None) -> V:
        """`stable.name` at `ref`: a version label, an alias from `aliases` (the registry's:
        alias -> label), or `stable` / `candidate`. Raises UnknownVersionError."""
        label = (aliases or {}).get(ref, ref)
        candidate = self._candidates.get(stable.name)
        if label in (STABLE, stable.version):
            return stable
        if candidate is not None and label in (CANDIDATE, candidate.version):
            return candidate
        known = [stable.version] + ([candidate.version] if candidate is not None else [])
        what = f"alias {ref!r} is version {label!r}" if label != ref else repr(ref)
        raise UnknownVersionError(
            f"{stable.name}: {what} is not served; available: {', '.join(sorted(known))}"
        )

    def _pin(self, key: tuple[str, str], version: str) -> None:
        if self._max_pins <= 0:
            return
        self._pins[key] = version
        self._pins.move_to_end(key)
        while len(self._pins) > self._max_pins:
            self._pins.popitem(last=False)


def split_versions(configs: Iterable[V]) -> tuple[list[V], list[V]]:
    """Configured models → (stable, candidates): the first entry of a name is its stable
    version, a second entry with another version its candidate.

    Raises ValueError for a repeated (name, version) or a third version of a name.
    """
    stable: dict[str, V] = {}
    candidates: dict[str, V] = {}
    for config in configs:
        first = stable.get(config.name)
        if first is None:
            stable[config.name] = config
        elif config.version == first.version:
            raise ValueError(f"model {config.name!r} lists version {config.version!r} twice")
        elif config.name in candidates:
            raise ValueError(
                f"model {config.name!r} has more than two versions (one stable, one candidate)"
            )
        else:
            candidates[config.name] = config
    return list(stable.values()), list(candidates.values())
