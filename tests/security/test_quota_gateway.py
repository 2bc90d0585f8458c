"""Quotas through one gateway (in-memory counters): a concurrency slot is held for the
whole of a streamed response, and tokens are charged when a completion ends."""

from __future__ import annotations

import time

import httpx

from demigod.security.api_keys import APIKeyStore
from tests.conftest import Server


def key_for(server: Server, tenant: str) -> dict[str, str]:
    store = APIKeyStore(server.log.parent / "data" / "security" / "api-keys.json")
    key, _ = store.create(name=f"test-{tenant}", tenant=tenant)
    return {"Authorization": f"Bearer {key}"}


def wait_for_fresh_minute(needed: float = 10.0) -> None:
    left = 60 - time.time() % 60
    if left < needed:
        time.sleep(left + 0.2)


def test_concurrent_slot_is_held_through_a_stream(secured: Server) -> None:
    auth = key_for(secured, "solo")
    url = f"{secured.url}/v1/completions"
    # long enough that the stream is still running when the second request arrives
    long = {"model": "tiny", "prompt": "hello", "max_tokens": 1500, "ignore_eos": True}
    with httpx.stream(
        "POST", url, json={**long, "stream": True}, headers=auth, timeout=120
    ) as first:
        assert first.status_code == 200
        lines = first.iter_lines()
        next(lines)  # generating now
        second = httpx.post(url, json={**long, "max_tokens": 1}, headers=auth, timeout=30)
        assert second.status_code == 429, second.text
        assert second.json()["error"]["param"] == "concurrent_requests"
        assert second.headers["retry-after"] == "1"
        for _ in lines:
            pass
    deadline = time.monotonic() + 10
    while True:  # the slot frees once the server has sent the last byte
        third = httpx.post(url, json={**long, "max_tokens": 1}, headers=auth, timeout=60)
        if third.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert third.status_code == 200, third.text


def test_tokens_per_minute_are_charged_at_the_end(secured: Server) -> None:
    auth = key_for(secured, "frugal")
    url = f"{secured.url}/v1/completions"
    wait_for_fresh_minute()
    first = httpx.post(
        url,
        json={"model": "tiny", "prompt": "hello there", "max_tokens": 6, "ignore_eos": True},
        headers=auth,
        timeout=60,
    )
    assert first.status_code == 200, first.text
    assert first.json()["usage"]["total_tokens"] > 5
    second = httpx.post(
        url, json={"model": "tiny", "prompt": "hi", "max_tokens": 1}, headers=auth, timeout=30
    )
    assert second.status_code == 429
    assert second.json()["error"]["param"] == "tokens_per_minute"
    assert 1 <= int(second.headers["retry-after"]) <= 60
