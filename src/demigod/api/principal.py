"""The principal: who a request comes from, once authenticated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AuthMethod = Literal["jwt", "api_key", "none"]
# The tenant of requests when authentication is off (the local demo).
ANONYMOUS_TENANT = "anonymous"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: subject, tenant, the models it may use, how it proved it.

    `models` None means every served model.
    """

    subject: str
    tenant: str
    auth_method: AuthMethod
    models: frozenset[str] | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)

    def may_use(self, model: str) -> bool:
        return self.models is None or model in self.models


ANONYMOUS = Principal(subject="anonymous", tenant=ANONYMOUS_TENANT, auth_method="none")


def intersect_models(
    first: frozenset[str] | None, second: frozenset[str] | None
) -> frozenset[str] | None:
    """Models allowed by both (None: no restriction)."""
    if first is None:
        return second
    if second is None:
        return first
    return first & second
