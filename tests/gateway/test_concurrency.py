"""Many clients at once: each gets its own, complete, unmixed answer."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import Server

PROMPTS = [f"Request number {i} says" for i in range(16)]


async def complete(client: httpx.AsyncClient, seed: int) -> dict[str, object]:
    # Seeded sampling: reproducible like greedy, but each request's answer is its own.
    body = {"model": "tiny", "prompt": PROMPTS[seed], "max_tokens": 16, "ignore_eos": True}
    reply = await client.post("/v1/completions", json={**body, "seed": seed})
    reply.raise_for_status()
    return reply.json()


async def run_all(url: str) -> list[dict[str, object]]:
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        return await asyncio.gather(*(complete(client, i) for i in range(len(PROMPTS))))


async def run_one_by_one(url: str) -> list[dict[str, object]]:
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        return [await complete(client, i) for i in range(len(PROMPTS))]


def test_parallel_requests_match_sequential_ones(server: Server) -> None:
    sequential = asyncio.run(run_one_by_one(server.url))
    parallel = asyncio.run(run_all(server.url))
    texts = [r["choices"][0]["text"] for r in parallel]  # type: ignore[index]
    assert texts == [r["choices"][0]["text"] for r in sequential]  # type: ignore[index]
    assert all(r["usage"]["completion_tokens"] == 16 for r in parallel)  # type: ignore[index]
    assert len({r["id"] for r in parallel}) == len(PROMPTS)
    assert len(set(texts)) > len(PROMPTS) // 2  # distinct prompts, distinct answers
