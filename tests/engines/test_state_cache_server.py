"""Through the real server: a chat's second turn resumes from the first, across a restart."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import Server, start_server, stop_server
from tests.gateway.test_health_and_metrics import scrape

FIRST = [{"role": "user", "content": "Tell me about the os module, please."}]


def chat(server: Server, messages: list[dict[str, str]]) -> str:
    body = {"model": "tiny", "messages": messages, "max_tokens": 8, "seed": 0, "ignore_eos": True}
    reply = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=60)
    reply.raise_for_status()
    return str(reply.json()["choices"][0]["message"]["content"])


def second_turn(reply: str) -> list[dict[str, str]]:
    return [*FIRST, {"role": "assistant", "content": reply}, {"role": "user", "content": "And?"}]


def cache_metric(server: Server, name: str, tier: str) -> float:
    return scrape(server).get(f'demigod_state_cache_{name}{{model="tiny",tier="{tier}"}}', 0)


def test_restarted_server_continues_from_disk(tiny_model: Path, tmp_path: Path) -> None:
    config = f"engine:\n  state_cache:\n    disk_dir: {tmp_path / 'states'}\n"
    first = start_server([f"tiny={tiny_model}"], tmp_path, config=config)
    try:
        reply = chat(first, FIRST)
        assert cache_metric(first, "bytes", "ram") > 0
    finally:
        stop_server(first)  # a clean stop writes every pending state to disk
    second = start_server([f"tiny={tiny_model}"], tmp_path, config=config)
    try:
        answer = chat(second, second_turn(reply))
        assert cache_metric(second, "hits_total", "disk") == 1
        assert cache_metric(second, "misses_total", "ram") == 1
    finally:
        stop_server(second)
    # the same answer as a server that re-reads the whole history
    cold = start_server(
        [f"tiny={tiny_model}"], tmp_path, config="engine:\n  state_cache:\n    enabled: false\n"
    )
    try:
        assert chat(cold, second_turn(reply)) == answer
        assert cache_metric(cold, "hits_total", "ram") == 0
    finally:
        stop_server(cold)
