"""Recurrent-state cache: a restored conversation continues exactly as a full re-prefill."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from demigod.engines.base import SamplingParams
from demigod.engines.chat_template import ChatTemplate
from demigod.engines.llama_cpp import LlamaCppEngine
from demigod.engines.state_cache import (
    DirectoryStore,
    MemoryStore,
    StateCache,
    decode_entry,
    encode_entry,
    prefix_keys,
)
from demigod.protocol import ChatMessage
from tests.engines.conftest import EngineRunner, collect, engine_config

TEMPLATE = ChatTemplate(None)  # the default plain-text template
# Replies are sampled: a random model's greedy reply repeats one token, which re-tokenises
# into merged tokens every time.
REPLY_TOKENS = 10
SETTLE_WAIT_SECONDS = 10
# Seeded sampling: any difference in the restored state shows up as a different draw.
CONTINUE = SamplingParams(max_tokens=16, temperature=1.0, seed=7, ignore_eos=True)


def chat_tokens(engine: LlamaCppEngine, messages: list[ChatMessage]) -> list[int]:
    return engine.tokenize(TEMPLATE.render(messages), parse_special=True)


def first_turn(runner: EngineRunner, engine: LlamaCppEngine, seed: int = 0) -> list[ChatMessage]:
    """Turn one of a chat, answered by `engine`; returns the history for turn two."""
    history = [ChatMessage(role="user", content="Tell me about the os module, please.")]
    sampling = SamplingParams(max_tokens=REPLY_TOKENS, temperature=1.0, seed=seed, ignore_eos=True)
    reply = runner.complete(engine, chat_tokens(engine, history), sampling)
    return [
        *history,
        ChatMessage(role="assistant", content=reply),
        ChatMessage(role="user", content="And what about sys?"),
    ]


def reference(runner: EngineRunner, model: Path, tokens: list[int]) -> str:
    """The continuation with no cache at all: the whole history re-read."""
    engine = runner.open(model, engine_config())
    try:
        return runner.complete(engine, tokens, CONTINUE)
    finally:
        runner.close(engine)


def settled(engine: LlamaCppEngine, tokens: list[int], at_least: int) -> int:
    """Tokens of `tokens` restorable once the last reply has settled (it settles after the
    answer is sent, so wait a moment for it)."""
    assert engine.state_cache is not None
    deadline = time.monotonic() + SETTLE_WAIT_SECONDS
    while True:
        cached = engine.state_cache.lookup(tokens, peek=True)
        found = len(cached.tokens) if cached else 0
        if found >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.01)


def test_ram_tier_resumes_each_turn_exactly(tiny_model: Path, runner: EngineRunner) -> None:
    """Only the new message is evaluated, whether or not the returned reply re-tokenises
    as it was sampled (random text often does not), and the continuation equals a full
    re-prefill."""
    engine = runner.open(tiny_model, engine_config(disk_dir=None))
    resumed = []
    for seed in range(8):
        history = first_turn(runner, engine, seed)
        tokens = chat_tokens(engine, history)
        reply = history[1].text()
        prefix = len(chat_tokens(engine, history[:1]))
        if reply.startswith(" "):  # the model's own space, which the template keeps
            prefix += len(engine.tokenize(reply, add_special=False))
            assert tokens[prefix:] == engine.tokenize("\nUser: And what about sys?\nAssistant:")
            prefix -= 1  # the reply's last token is held back: it may merge with what follows
            resumed.append(seed)
        # else the template adds a space the model never saw: the prompt's checkpoint serves
        assert settled(engine, tokens, prefix) == prefix
        assert runner.complete(engine, tokens, CONTINUE) == reference(runner, tiny_model, tokens)
    assert resumed  # some replies start with the model's own space
    stats = engine.state_cache_stats()
    assert stats is not None and stats.hits["ram"] >= 6 and stats.bytes["ram"] > 0


def test_one_shot_requests_save_only_the_prompt_state(
    tiny_model: Path, runner: EngineRunner
) -> None:
    """Re-reading the reply is for a next turn: a request that expects none (no session,
    no earlier reply) leaves just its prompt's checkpoint; the same turn in a conversation
    also gets its reply settled."""
    engine = runner.open(tiny_model, engine_config(disk_dir=None))
    history = [ChatMessage(role="user", content="Tell me about the os module, please.")]
    prompt = chat_tokens(engine, history)
    assert engine.state_cache is not None
    settled_longer = 0
    for seed in range(6):
        sampling = SamplingParams(
            max_tokens=REPLY_TOKENS, temperature=1.0, seed=seed, ignore_eos=True
        )
        reply = runner.complete(engine, prompt, sampling, next_turn=False)
        answered = [*history, ChatMessage(role="assistant", content=reply)]
        tokens = chat_tokens(engine, [*answered, ChatMessage(role="user", content="And?")])
        cached = engine.state_cache.lookup(tokens, peek=True)
        assert cached is not None and len(cached.tokens) == len(prompt)
        assert runner.complete(engine, prompt, sampling, next_turn=True) == reply
        settled_longer += settled(engine, tokens, len(prompt) + 1) > len(prompt)
    assert settled_longer  # replies that start with the model's own space settle


def test_disk_tier_survives_a_restart(
    tiny_model: Path, runner: EngineRunner, tmp_path: Path
) -> None:
    config = engine_config(disk_dir=tmp_path / "disk")
    engine = runner.open(tiny_model, config)
    history = first_turn(runner, engine)
    runner.close(engine)  # flushes pending writes
    restarted = runner.open(tiny_model, config)
    tokens = chat_tokens(restarted, history)
    assert runner.complete(restarted, tokens, CONTINUE) == reference(runner, tiny_model, tokens)
    stats = restarted.state_cache_stats()
    assert stats is not None and stats.hits["disk"] == 1 and stats.misses["ram"] == 1


def test_shared_tier_moves_a_session_to_another_replica(
    tiny_model: Path, runner: EngineRunner, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    first = runner.open(tiny_model, engine_config(disk_dir=tmp_path / "a", shared_dir=shared))
    second = runner.open(tiny_model, engine_config(disk_dir=tmp_path / "b", shared_dir=shared))
    history = first_turn(runner, first)
    tokens = chat_tokens(second, history)
    # the first replica's settled reply reaches the shared directory soon after the answer
    assert settled(second, tokens, len(chat_tokens(second, history[:1])) + 1) > 0
    assert runner.complete(second, tokens, CONTINUE) == reference(runner, tiny_model, tokens)
    stats = second.state_cache_stats()
    assert stats is not None and stats.hits["shared"] == 1
    assert stats.misses["ram"] == 1 and stats.misses["disk"] == 1


def test_completion_prompts_extend_saved_prefixes_too(
    tiny_model: Path, runner: EngineRunner
) -> None:
    engine = runner.open(tiny_model, engine_config(disk_dir=None))
    base = engine.tokenize("def parse_args(argv):\n    parser = argparse.ArgumentParser(")
    runner.complete(engine, base, CONTINUE)
    longer = base + engine.tokenize(' prog="tool")', add_special=False)
    assert runner.complete(engine, longer, CONTINUE) == reference(runner, tiny_model, longer)


# -- entries and tiers ---------------------------------------------------------------------

SHA = "ab" * 32
OTHER_SHA = "cd" * 32


def test_entries_from_another_model_or_runtime_are_refused(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path, "shared")
    tokens = [5, 6, 7]
    key = prefix_keys(SHA[:32], tokens, [3])[3]
    cache = StateCache(SHA, "runtime 1", [MemoryStore(1 << 20), store])
    for foreign in (
        encode_entry(OTHER_SHA, "runtime 1", tokens, b"state"),  # another model's file
        encode_entry(SHA, "runtime 2", tokens, b"state"),  # another llama.cpp
        encode_entry(SHA, "runtime 1", tokens, b"state")[:-1],  # truncated
        encode_entry(SHA, "runtime 1", [5, 6, 8], b"state"),  # other tokens under this key
    ):
        store.put(SHA[:32], key, foreign)
        assert cache.lookup([*tokens, 8]) is None
    store.put(SHA[:32], key, encode_entry(SHA, "runtime 1", tokens, b"state"))
    found = cache.lookup([*tokens, 8])
    assert found is not None and (found.tokens, found.payload, found.tier) == (
        (5, 6, 7),
        b"state",
        "shared",
    )
    assert cache.lookup([*tokens, 8]).tier == "ram"  # type: ignore[union-attr]  # promoted
    cache.close()


def test_longest_proper_prefix_wins(tmp_path: Path) -> None:
    cache = StateCache(SHA, "r", [MemoryStore(1 << 20)])
    cache.save([1, 2], b"two")
    cache.save([1, 2, 3, 4], b"four")
    cache.save([1, 2, 3, 4, 5], b"five")
    assert cache.lookup([1, 2, 3, 4, 5]).payload == b"four"  # type: ignore[union-attr]
    assert cache.lookup([1, 2, 3, 9]).payload == b"two"  # type: ignore[union-attr]
    assert cache.lookup([1]) is None and cache.lookup([9, 1, 2, 3]) is None
    cache.close()


def test_ram_budget_evicts_least_recently_used() -> None:
    store = MemoryStore(budget_bytes=10)
    store.put("m", "a", b"1234")
    store.put("m", "b", b"1234")
    assert store.get("m", "a") == b"1234"  # a is now the most recent
    store.put("m", "c", b"1234")
    assert store.keys("m") == ["a", "c"] and store.size_bytes() == 8
    store.put("m", "huge", b"x" * 11)  # larger than the budget: not kept
    assert store.keys("m") == ["a", "c"]


def test_disk_budget_evicts_oldest_files(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path, "disk", budget_bytes=10)
    for key in ("a", "b", "c"):
        store.put("m", key, b"1234")
    assert sorted(store.keys("m")) == ["b", "c"] and store.size_bytes() == 8
    assert DirectoryStore(tmp_path, "disk").size_bytes() == 8  # re-counted after a restart


def test_entry_round_trip() -> None:
    blob = encode_entry(SHA, "r", [1, 2, 70000], b"\x00payload")
    assert decode_entry(blob, SHA, "r") == ((1, 2, 70000), b"\x00payload")
    with pytest.raises(ValueError):
        decode_entry(b"garbage", SHA, "r")


def test_long_replies_are_not_re_read(tiny_model: Path, runner: EngineRunner) -> None:
    """With settle_max_tokens 0 a reply is saved only when it needs no re-reading; the next
    turn still continues exactly, from the prompt's checkpoint when it must."""
    engine = runner.open(tiny_model, engine_config(disk_dir=None, settle_max_tokens=0))
    assert engine.state_cache is not None
    for seed in range(3):
        history = first_turn(runner, engine, seed)
        tokens = chat_tokens(engine, history)
        turn_one = len(chat_tokens(engine, history[:1]))
        cached = engine.state_cache.lookup(tokens, peek=True)
        # the prompt's checkpoint, or the reply as sampled when it re-tokenises the same
        assert cached is not None and len(cached.tokens) in (turn_one, turn_one + REPLY_TOKENS - 1)
        assert runner.complete(engine, tokens, CONTINUE) == reference(runner, tiny_model, tokens)


def test_a_turn_sent_at_once_continues_exactly(tiny_model: Path, runner: EngineRunner) -> None:
    """The next turn may arrive while the last reply is still settling: it then continues in
    that slot (or from a checkpoint) and must still equal a full re-prefill."""
    engine = runner.open(tiny_model, engine_config(disk_dir=None))

    async def two_turns(seed: int) -> tuple[list[int], str]:
        history = [ChatMessage(role="user", content="Tell me about the os module, please.")]
        sampling = SamplingParams(max_tokens=REPLY_TOKENS, temperature=1.0, seed=seed)
        reply = await collect(engine, chat_tokens(engine, history), sampling)
        history += [
            ChatMessage(role="assistant", content=reply),
            ChatMessage(role="user", content="And what about sys?"),
        ]
        tokens = chat_tokens(engine, history)
        return tokens, await collect(engine, tokens, CONTINUE)

    for seed in range(6):
        tokens, answer = runner.loop.run_until_complete(two_turns(seed))
        assert answer == reference(runner, tiny_model, tokens)
