"""llama-server's read-only endpoints on a real server, as tools written against
llama-server read them: /health, /props, /slots."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from demigod.config import EngineConfig
from demigod.engines.chat_template import DEFAULT_TEMPLATE
from tests.conftest import Server


def test_health_answers_ok_once_the_models_are_loaded(server: Server) -> None:
    reply = httpx.get(f"{server.url}/health", timeout=30)
    assert (reply.status_code, reply.json()) == (200, {"status": "ok"})


def test_props_describe_the_served_model(server: Server) -> None:
    props = httpx.get(f"{server.url}/props", timeout=30).json()  # one model: no ?model=
    card = httpx.get(f"{server.url}/v1/models/tiny", timeout=30).json()
    assert props["model_alias"] == "tiny"
    assert props["architecture"] == "mamba"
    assert props["default_generation_settings"]["n_ctx"] == card["context_length"]
    assert props["total_slots"] == EngineConfig().slots
    assert props["chat_template"] == DEFAULT_TEMPLATE  # the tiny GGUF ships no template
    assert props["build_info"].startswith("llama-cpp-python ")
    assert httpx.get(f"{server.url}/props", params={"model": "tiny"}, timeout=30).json() == props
    missing = httpx.get(f"{server.url}/props", params={"model": "nope"}, timeout=30)
    assert missing.status_code == 404
    assert (missing.json()["error"]["param"], missing.json()["error"]["code"]) == (
        "model",
        "model_not_found",
    )


def test_slots_show_which_slot_holds_a_generation(server: Server) -> None:
    idle = httpx.get(f"{server.url}/slots", timeout=30).json()
    assert [slot["id"] for slot in idle] == list(range(EngineConfig().slots))
    assert not any(slot["is_processing"] for slot in idle)
    n_ctx = idle[0]["n_ctx"]
    body = {
        "model": "tiny",
        "prompt": "Once upon a time",
        "max_tokens": n_ctx - 16,  # seconds of decoding: long enough to be seen
        "ignore_eos": True,
    }
    busy: list[int] = []
    with ThreadPoolExecutor(1) as pool:
        generation = pool.submit(httpx.post, f"{server.url}/v1/completions", json=body, timeout=120)
        while not generation.done():
            slots = httpx.get(f"{server.url}/slots", timeout=30).json()
            busy.append(sum(slot["is_processing"] for slot in slots))
        generation.result().raise_for_status()
    assert max(busy) == 1  # one sequence, in one slot, while it generated
    after = httpx.get(f"{server.url}/slots", timeout=30).json()
    assert not any(slot["is_processing"] for slot in after)
