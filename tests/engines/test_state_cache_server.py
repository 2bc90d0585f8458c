"""Through the real server: a chat's second turn resumes from the first, across a restart."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.conftest import Server, start_server, stop_server
from tests.gateway.test_health_and_metrics import scrape

FIRST = [{"role": "user", "content": "Tell me about the os module, please."}]
# Deep probes (one runs at startup) are cache lookups too: off where the tests count them.
NO_PROBES = "observability:\n  deep_probe_interval_seconds: 0\n"


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
    config = f"engine:\n  state_cache:\n    disk_dir: {tmp_path / 'states'}\n" + NO_PROBES
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


def test_only_conversations_get_their_reply_settled(tiny_model: Path, tmp_path: Path) -> None:
    """A first turn with no session is one-shot: only its prompt's state is saved, however
    often it is asked. With `X-Session-Id` the engine also saves prompt + reply for the
    next turn."""
    server = start_server([f"tiny={tiny_model}"], tmp_path, config="")
    body = {"model": "tiny", "messages": FIRST, "max_tokens": 8, "seed": 0, "ignore_eos": True}
    url = f"{server.url}/v1/chat/completions"
    try:
        httpx.post(url, json=body, timeout=60).raise_for_status()
        one_shot = cache_metric(server, "bytes", "ram")
        assert one_shot > 0
        httpx.post(url, json=body, timeout=60).raise_for_status()
        time.sleep(0.5)  # time enough for a settle the engine should not have started
        assert cache_metric(server, "bytes", "ram") == one_shot  # the second one added nothing
        headers = {"X-Session-Id": "chat-42"}
        httpx.post(url, json=body, headers=headers, timeout=60).raise_for_status()
        deadline = time.monotonic() + 10  # the reply settles after the answer is sent
        while cache_metric(server, "bytes", "ram") == one_shot and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cache_metric(server, "bytes", "ram") > one_shot
    finally:
        stop_server(server)


def test_two_server_processes_share_a_session_through_the_shared_directory(
    tiny_model: Path, tmp_path: Path
) -> None:
    """Replicas as deployed: two `demigod serve` processes, each with its own disk tier,
    mounting one `shared_dir`. A conversation started on one continues on the other from
    the state the first one saved, and answers as if the whole history were re-read."""
    shared = tmp_path / "shared"

    def replica(name: str) -> Server:
        config = (
            f"engine:\n  state_cache:\n    disk_dir: {tmp_path / name}\n    shared_dir: {shared}\n"
            + NO_PROBES
        )
        return start_server([f"tiny={tiny_model}"], tmp_path / name, config=config)

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = replica("a"), replica("b")
    try:
        body = {"model": "tiny", "messages": FIRST, "max_tokens": 8, "seed": 0}
        answered = httpx.post(
            f"{first.url}/v1/chat/completions",
            json={**body, "ignore_eos": True},
            headers={"X-Session-Id": "moving-session"},
            timeout=60,
        )
        answered.raise_for_status()
        reply = str(answered.json()["choices"][0]["message"]["content"])
        # The prompt's state is saved before the answer, the settled reply just after it.
        deadline = time.monotonic() + 30
        while len(list(shared.rglob("*.state"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        answer = chat(second, second_turn(reply))
        assert cache_metric(second, "hits_total", "shared") == 1
        assert cache_metric(second, "misses_total", "ram") == 1
        assert cache_metric(second, "misses_total", "disk") == 1
        assert cache_metric(first, "hits_total", "shared") == 0
    finally:
        stop_server(first)
        stop_server(second)
    cold = start_server(
        [f"tiny={tiny_model}"], tmp_path, config="engine:\n  state_cache:\n    enabled: false\n"
    )
    try:
        assert chat(cold, second_turn(reply)) == answer
    finally:
        stop_server(cold)
