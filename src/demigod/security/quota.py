"""Tenant quotas: requests/min, tokens/min, concurrent requests, tokens/day.

Counted in fixed windows (the UTC minute, the UTC day) so a limit is exact: at most N
requests are admitted in a minute, however many gateway replicas share the counters.
One process counts in memory; several share Redis, where one Lua script checks every
limit and takes the request slot atomically, on Redis's clock (replicas' clocks may
differ). Tokens are charged when a completion ends, so a tenant's token limits refuse
requests once the window's budget is spent (a request already running may finish past
it). Concurrent slots are leases: a replica that dies holding one frees it after
`security.concurrency_lease_seconds`.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter

from demigod.api.admission import Admission, Outcome
from demigod.api.errors import APIError
from demigod.config import SecurityConfig, TenantConfig
from demigod.extras import require
from demigod.security.tenants import tenant_config

MINUTE = 60
DAY = 86400
KEY_PREFIX = "demigod:quota"
LIMIT_HEADER = "x-demigod-quota-limit"  # which limit a 429 hit


@dataclass(frozen=True)
class Refusal:
    """A limit that refused a request, and when to retry."""

    limit: str  # requests_per_minute | tokens_per_minute | concurrent_requests | tokens_per_day
    value: int
    retry_after: int


def _limits(config: TenantConfig) -> list[int]:
    """The four limits in script order; -1 for unlimited."""
    values = (
        config.requests_per_minute,
        config.tokens_per_minute,
        config.concurrent_requests,
        config.tokens_per_day,
    )
    return [-1 if value is None else value for value in values]


LIMIT_NAMES = ("requests_per_minute", "tokens_per_minute", "concurrent_requests", "tokens_per_day")


class QuotaStoreError(Exception):
    """The shared quota store could not be asked (Redis down, unreachable, timing out)."""


class QuotaBackend(Protocol):
    async def acquire(self, tenant: str, config: TenantConfig, slot: str) -> Refusal | None:
        """Check every limit and, if none refuses, count the request and take `slot`.
        Raises QuotaStoreError when the store cannot be asked."""
        ...

    async def release(self, tenant: str, slot: str) -> None: ...

    async def charge(self, tenant: str, tokens: int) -> None: ...

    async def close(self) -> None: ...


class MemoryQuotas:
    """Counters in this process (one gateway). No await between check and update, so
    concurrent requests on the event loop cannot both take the last unit."""

    def __init__(self, lease_seconds: int) -> None:
        self._lease = lease_seconds
        self._requests: dict[tuple[str, int], int] = {}
        self._tokens_minute: dict[tuple[str, int], int] = {}
        self._tokens_day: dict[tuple[str, int], int] = {}
        self._slots: dict[str, dict[str, float]] = {}

    async def acquire(self, tenant: str, config: TenantConfig, slot: str) -> Refusal | None:
        now = time.time()
        minute, day = int(now // MINUTE), int(now // DAY)
        rpm, tpm, concurrent, tpd = _limits(config)
        to_minute_end = max(1, math.ceil((minute + 1) * MINUTE - now))
        slots = self._slots.setdefault(tenant, {})
        if concurrent >= 0:
            for held, expires in list(slots.items()):
                if expires <= now:
                    del slots[held]
            if len(slots) >= concurrent:
                return Refusal("concurrent_requests", concurrent, 1)
        if rpm >= 0 and self._requests.get((tenant, minute), 0) >= rpm:
            return Refusal("requests_per_minute", rpm, to_minute_end)
        if tpm >= 0 and self._tokens_minute.get((tenant, minute), 0) >= tpm:
            return Refusal("tokens_per_minute", tpm, to_minute_end)
        if tpd >= 0 and self._tokens_day.get((tenant, day), 0) >= tpd:
            return Refusal("tokens_per_day", tpd, max(1, math.ceil((day + 1) * DAY - now)))
        self._forget_before(minute, day)
        self._requests[(tenant, minute)] = self._requests.get((tenant, minute), 0) + 1
        if concurrent >= 0:
            slots[slot] = now + self._lease
        return None

    def _forget_before(self, minute: int, day: int) -> None:
        for counts, current in (
            (self._requests, minute),
            (self._tokens_minute, minute),
            (self._tokens_day, day),
        ):
            for key in [key for key in counts if key[1] < current]:
                del counts[key]

    async def release(self, tenant: str, slot: str) -> None:
        self._slots.get(tenant, {}).pop(slot, None)

    async def charge(self, tenant: str, tokens: int) -> None:
        now = time.time()
        minute, day = (tenant, int(now // MINUTE)), (tenant, int(now // DAY))
        self._tokens_minute[minute] = self._tokens_minute.get(minute, 0) + tokens
        self._tokens_day[day] = self._tokens_day.get(day, 0) + tokens

    async def close(self) -> None:
        return None


# KEYS[1]: the tenant's key prefix, with the tenant in a {hash tag} so every key of a
# tenant lands on one cluster slot. ARGV: rpm, tpm, concurrent, tpd (-1: unlimited),
# slot id, lease seconds. Returns {limit name, limit, retry after} or {"", 0, 0}.
ACQUIRE_SCRIPT = """
local prefix = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2])
local conc, tpd = tonumber(ARGV[3]), tonumber(ARGV[4])
local slot, lease = ARGV[5], tonumber(ARGV[6])
local minute = math.floor(now / 60)
local day = math.floor(now / 86400)
local to_minute_end = math.max(1, math.ceil((minute + 1) * 60 - now))
local slots = prefix .. ':slots'
local requests = prefix .. ':requests:' .. minute
local tokens_minute = prefix .. ':tokens:' .. minute
local tokens_day = prefix .. ':tokens-day:' .. day
if conc >= 0 then
  redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
  if redis.call('ZCARD', slots) >= conc then return {'concurrent_requests', conc, 1} end
end
if rpm >= 0 and tonumber(redis.call('GET', requests) or '0') >= rpm then
  return {'requests_per_minute', rpm, to_minute_end}
end
if tpm >= 0 and tonumber(redis.call('GET', tokens_minute) or '0') >= tpm then
  return {'tokens_per_minute', tpm, to_minute_end}
end
if tpd >= 0 and tonumber(redis.call('GET', tokens_day) or '0') >= tpd then
  return {'tokens_per_day', tpd, math.max(1, math.ceil((day + 1) * 86400 - now))}
end
redis.call('INCR', requests)
redis.call('EXPIRE', requests, 120)
if conc >= 0 then
  redis.call('ZADD', slots, now + lease, slot)
  redis.call('EXPIRE', slots, lease + 60)
end
return {'', 0, 0}
"""

# KEYS[1]: prefix; ARGV[1]: tokens. Charged to the current minute and day on Redis's clock.
CHARGE_SCRIPT = """
local prefix = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1])
local tokens_minute = prefix .. ':tokens:' .. math.floor(now / 60)
local tokens_day = prefix .. ':tokens-day:' .. math.floor(now / 86400)
redis.call('INCRBY', tokens_minute, ARGV[1])
redis.call('EXPIRE', tokens_minute, 120)
redis.call('INCRBY', tokens_day, ARGV[1])
redis.call('EXPIRE', tokens_day, 172800)
return 1
"""


class RedisQuotas:
    """Counters in Redis, shared by every replica; each check-and-take is one script.
    Needs the `redis` extra."""

    def __init__(self, url: str, lease_seconds: int) -> None:
        redis = require("redis.asyncio", "quotas shared through Redis (security.redis_url)")
        self._errors: tuple[type[Exception], ...] = (
            require("redis.exceptions", "Redis quotas").RedisError,
            TimeoutError,
            OSError,
        )
        self._redis = redis.Redis.from_url(url)
        self._lease = lease_seconds
        self._acquire = self._redis.register_script(ACQUIRE_SCRIPT)
        self._charge = self._redis.register_script(CHARGE_SCRIPT)

    @staticmethod
    def _prefix(tenant: str) -> str:
        return f"{KEY_PREFIX}:{{{tenant}}}"

    async def acquire(self, tenant: str, config: TenantConfig, slot: str) -> Refusal | None:
        try:
            limit, value, retry_after = await self._acquire(
                keys=[self._prefix(tenant)], args=[*_limits(config), slot, self._lease]
            )
        except self._errors as exc:
            raise QuotaStoreError(str(exc)) from exc
        name = limit.decode() if isinstance(limit, bytes) else str(limit)
        return Refusal(name, int(value), int(retry_after)) if name else None

    async def release(self, tenant: str, slot: str) -> None:
        await self._redis.zrem(f"{self._prefix(tenant)}:slots", slot)

    async def charge(self, tenant: str, tokens: int) -> None:
        await self._charge(keys=[self._prefix(tenant)], args=[tokens])

    async def close(self) -> None:
        await self._redis.aclose()


def _unlimited(config: TenantConfig) -> bool:
    return all(value < 0 for value in _limits(config))


class QuotaGate:
    """The quota admission step: 429 + Retry-After naming the limit, else a slot held until
    the response is sent and the tokens charged then."""

    def __init__(
        self, security: SecurityConfig, backend: QuotaBackend, registry: CollectorRegistry
    ) -> None:
        self.security = security
        self.backend = backend
        self._refusals = Counter(
            "demigod_quota_refusals",
            "Requests refused 429 by a tenant limit",
            ["tenant", "limit"],
            registry=registry,
        )

    @classmethod
    def from_config(cls, security: SecurityConfig, registry: CollectorRegistry) -> QuotaGate:
        backend: QuotaBackend = (
            RedisQuotas(security.redis_url, security.concurrency_lease_seconds)
            if security.redis_url
            else MemoryQuotas(security.concurrency_lease_seconds)
        )
        return cls(security, backend, registry)

    async def __call__(self, admission: Admission) -> None:
        if not admission.is_completion:
            return
        tenant = admission.principal.tenant
        config = tenant_config(self.security, tenant)
        if _unlimited(config):
            return
        slot = uuid.uuid4().hex
        try:
            refusal = await self.backend.acquire(tenant, config, slot)
        except QuotaStoreError as exc:  # Redis down: 503, never a 500
            raise APIError(
                503,
                "quota store unreachable; retry shortly",
                type="server_error",
                code="quota_unavailable",
                headers={"Retry-After": "1"},
            ) from exc
        if refusal is not None:
            self._refusals.labels(tenant, refusal.limit).inc()
            admission.verdicts["quota"] = f"refused:{refusal.limit}"
            raise APIError(
                429,
                f"tenant {tenant!r} is over its {refusal.limit} limit ({refusal.value}); "
                f"retry after {refusal.retry_after} s",
                type="rate_limit_error",
                code="rate_limit_exceeded",
                param=refusal.limit,
                headers={"Retry-After": str(refusal.retry_after), LIMIT_HEADER: refusal.limit},
            )
        admission.verdicts["quota"] = "admitted"

        async def settle(admission: Admission, outcome: Outcome) -> None:
            tokens = outcome.prompt_tokens + outcome.completion_tokens
            if tokens:
                await self.backend.charge(tenant, tokens)
            await self.backend.release(tenant, slot)

        admission.on_finish(settle)
