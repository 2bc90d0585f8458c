"""Tenant quotas are exact: in one process (memory) and across three gateway replicas
sharing a real Redis (Debian redis-server)."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis

from demigod.config import TenantConfig
from demigod.processes import free_port
from demigod.security.api_keys import APIKeyStore
from demigod.security.quota import MemoryQuotas, QuotaBackend, RedisQuotas
from tests.conftest import Server, require_binary, start_server, stop_server

LIMIT = 7
REQUESTS = 30
PROMPT = {"model": "tiny", "prompt": "hello", "max_tokens": 1}
# Three replicas start at once, each training the routing classifier: slow on a busy box.
REPLICA_START_TIMEOUT = 240.0


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """redis-server on a free loopback port, nothing persisted."""
    binary = require_binary("redis-server")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=workdir,
        stdout=(workdir / "redis.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 15
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError((workdir / "redis.log").read_text()) from None
            time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


def backends(redis_url: str) -> list[QuotaBackend]:
    return [MemoryQuotas(lease_seconds=900), RedisQuotas(redis_url, lease_seconds=900)]


async def admitted(backend: QuotaBackend, tenant: str, config: TenantConfig, n: int) -> list[str]:
    """The slots of `n` concurrent requests that were admitted."""
    slots = [f"slot-{i}" for i in range(n)]
    results = await asyncio.gather(*(backend.acquire(tenant, config, slot) for slot in slots))
    return [slot for slot, refusal in zip(slots, results, strict=True) if refusal is None]


def seconds_left_in_minute(url: str) -> float:
    now, micros = redis.Redis.from_url(url).time()
    return 60 - (now % 60) - micros / 1e6


def wait_for_fresh_minute(url: str, needed: float = 15.0) -> None:
    """Counting is per UTC minute: start a burst where it cannot straddle two minutes."""
    left = seconds_left_in_minute(url)
    if left < needed:
        time.sleep(left + 0.2)


def test_backends_enforce_every_limit(redis_url: str) -> None:
    async def scenario() -> None:
        for backend in backends(redis_url):
            kind = type(backend).__name__
            tenant = f"unit-{kind}-{time.monotonic_ns()}"
            # concurrent requests: a slot held until released
            pool = TenantConfig(concurrent_requests=2)
            holding = await admitted(backend, tenant, pool, 5)
            assert len(holding) == 2, kind
            refusal = await backend.acquire(tenant, pool, "late")
            assert refusal is not None and refusal.limit == "concurrent_requests"
            await backend.release(tenant, holding[0])
            assert await backend.acquire(tenant, pool, "after-release") is None, kind
            # tokens per minute and per day: refused once the window's budget is spent
            for limit in ("tokens_per_minute", "tokens_per_day"):
                spender = f"{tenant}-{limit}"
                budget = TenantConfig(**{limit: 100})
                assert await backend.acquire(spender, budget, "a") is None
                await backend.charge(spender, 60)
                assert await backend.acquire(spender, budget, "b") is None
                await backend.charge(spender, 60)
                refusal = await backend.acquire(spender, budget, "c")
                assert refusal is not None and refusal.limit == limit, kind
                assert refusal.retry_after >= 1
            await backend.close()

    asyncio.run(scenario())


def test_requests_per_minute_is_exact_under_concurrency(redis_url: str) -> None:
    wait_for_fresh_minute(redis_url, needed=5)

    async def scenario() -> None:
        for backend in backends(redis_url):
            config = TenantConfig(requests_per_minute=LIMIT)
            tenant = f"burst-{type(backend).__name__}-{time.monotonic_ns()}"
            assert len(await admitted(backend, tenant, config, 50)) == LIMIT
            await backend.close()

    asyncio.run(scenario())


def test_redis_lease_frees_a_dead_replicas_slot(redis_url: str) -> None:
    async def scenario() -> None:
        backend = RedisQuotas(redis_url, lease_seconds=1)
        config = TenantConfig(concurrent_requests=1)
        tenant = f"lease-{time.monotonic_ns()}"
        assert await backend.acquire(tenant, config, "crashed") is None  # never released
        assert await backend.acquire(tenant, config, "next") is not None
        await asyncio.sleep(1.2)
        assert await backend.acquire(tenant, config, "next") is None
        await backend.close()

    asyncio.run(scenario())


@pytest.fixture(scope="module")
def replicas(
    tiny_model: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[list[Server], str]]:
    """Three `demigod serve` processes sharing Redis and one API key file; and a key of
    tenant `burst` (LIMIT requests/min)."""
    tmp = tmp_path_factory.mktemp("replicas")
    config = f"""
security:
  auth: required
  redis_url: {redis_url}
  tenants:
    burst: {{requests_per_minute: {LIMIT}}}
"""
    key, _ = APIKeyStore(tmp / "data" / "security" / "api-keys.json").create(
        name="load", tenant="burst"
    )

    def start(_: int) -> Server:
        return start_server(
            [f"tiny={tiny_model}"],
            tmp,
            env={"DEMIGOD_SECURITY__AUTH": "required"},
            config=config,
            timeout=REPLICA_START_TIMEOUT,
        )

    with ThreadPoolExecutor(3) as pool:
        servers = list(pool.map(start, range(3)))
    yield servers, key
    for server in servers:
        stop_server(server)


def test_three_replicas_admit_exactly_the_limit(
    replicas: tuple[list[Server], str], redis_url: str
) -> None:
    servers, key = replicas
    wait_for_fresh_minute(redis_url)
    barrier = threading.Barrier(REQUESTS)

    def send(i: int) -> httpx.Response:
        server = servers[i % len(servers)]
        barrier.wait()
        return httpx.post(
            f"{server.url}/v1/completions",
            json=PROMPT,
            headers={"Authorization": f"Bearer {key}"},
            timeout=120,
        )

    with ThreadPoolExecutor(REQUESTS) as pool:
        replies = list(pool.map(send, range(REQUESTS)))
    statuses = [reply.status_code for reply in replies]
    assert statuses.count(200) == LIMIT, statuses
    assert statuses.count(429) == REQUESTS - LIMIT, statuses
    for reply in replies:
        if reply.status_code == 429:
            assert reply.json()["error"]["param"] == "requests_per_minute"
            assert "requests_per_minute" in reply.json()["error"]["message"]
            assert 1 <= int(reply.headers["retry-after"]) <= 60
    # every replica answered some of them, and their refusal counters add up
    refused = 0.0
    for server in servers:
        text = httpx.get(f"{server.url}/metrics", timeout=30).text
        for line in text.splitlines():
            if line.startswith('demigod_quota_refusals_total{limit="requests_per_minute"'):
                refused += float(line.split()[-1])
    assert refused == REQUESTS - LIMIT
