"""The state cache on every llama.cpp family: hybrids (Jamba, Falcon-H1, Granite-H) save
attention KV cells beside their recurrent state; a restored turn must continue exactly as
a full re-prefill, as it does for pure SSMs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import FamilyModels
from tests.engines.conftest import EngineRunner, engine_config
from tests.engines.test_state_cache import (
    CONTINUE,
    chat_tokens,
    first_turn,
    reference,
    settled,
)

pytestmark = pytest.mark.slow  # builds, converts and quantizes tiny models


@pytest.mark.parametrize("name", ["mamba2", "rwkv7", "jamba", "falcon-h1", "granite-hybrid"])
def test_restored_state_continues_like_a_reprefill(
    family_models: FamilyModels, runner: EngineRunner, name: str, tmp_path: Path
) -> None:
    """Turn one on one engine; turn two on a restarted one, from the disk tier: the state
    (recurrent + KV) crosses contexts and the continuation equals a full re-prefill."""
    model = family_models.gguf(name)
    config = engine_config(disk_dir=tmp_path / "disk")
    engine = runner.open(model, config)
    history = first_turn(runner, engine)
    tokens = chat_tokens(engine, history)
    prompt_one = len(chat_tokens(engine, history[:1]))
    assert settled(engine, tokens, prompt_one) >= prompt_one  # turn one's state is cached
    runner.close(engine)  # flushes the disk tier
    restarted = runner.open(model, config)
    assert runner.complete(restarted, tokens, CONTINUE) == reference(runner, model, tokens)
    stats = restarted.state_cache_stats()
    assert stats is not None and stats.hits["disk"] == 1 and stats.misses["ram"] == 1
