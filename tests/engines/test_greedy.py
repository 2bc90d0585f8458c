"""Greedy decoding (an argmax over the logits row, read in place) picks what llama.cpp's own
greedy sampler picks, with and without `ignore_eos`."""

from __future__ import annotations

import ctypes
from pathlib import Path

import llama_cpp
import numpy as np
import pytest

from demigod.engines.base import SamplingParams
from demigod.engines.llama_batch import greedy_token
from demigod.engines.llama_cpp import LlamaCppEngine
from tests.engines.conftest import EngineRunner, engine_config

PROMPTS = ["def main():\n", "The answer is", "import os\nimport sys\n", "x = [", "Hello"]
MAX_TOKENS = 48


def greedy_chain(n_vocab: int, banned: list[int]) -> llama_cpp.llama_sampler_p:
    """llama.cpp's greedy sampler after a -inf logit bias on `banned`."""
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    if banned:
        biases = (llama_cpp.llama_logit_bias * len(banned))()
        for entry, token in zip(biases, banned, strict=True):
            entry.token, entry.bias = token, float("-inf")
        llama_cpp.llama_sampler_chain_add(
            chain, llama_cpp.llama_sampler_init_logit_bias(n_vocab, len(banned), biases)
        )
    llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
    return chain


def reference_greedy(engine: LlamaCppEngine, prompt: list[int], ignore_eos: bool) -> list[int]:
    """Decode one sequence with llama.cpp's greedy sampler (EOG biased to -inf when
    `ignore_eos`) on a context of its own; the tokens generated, EOG included."""
    model, vocab = engine._model, engine._vocab
    params = llama_cpp.llama_context_default_params()
    params.n_ctx, params.n_batch, params.n_threads, params.n_threads_batch = 512, 512, 1, 1
    ctx = llama_cpp.llama_init_from_model(model, params)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    eog = [t for t in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, t)]
    chain = greedy_chain(n_vocab, eog if ignore_eos else [])
    try:
        generated: list[int] = []
        pending = list(prompt)
        while len(generated) < MAX_TOKENS:
            tokens = (llama_cpp.llama_token * len(pending))(*pending)
            batch = llama_cpp.llama_batch_get_one(tokens, len(pending))
            assert llama_cpp.llama_decode(ctx, batch) == 0
            token = llama_cpp.llama_sampler_sample(chain, ctx, -1)
            generated.append(token)
            if token in eog:
                break
            pending = [token]
        return generated
    finally:
        llama_cpp.llama_sampler_free(chain)
        llama_cpp.llama_free(ctx)


def text_of(engine: LlamaCppEngine, tokens: list[int]) -> str:
    buffer = ctypes.create_string_buffer(256)
    pieces = b""
    for token in tokens:
        if llama_cpp.llama_vocab_is_eog(engine._vocab, token):
            break
        n = llama_cpp.llama_token_to_piece(engine._vocab, token, buffer, len(buffer), 0, False)
        pieces += buffer.raw[:n]
    return pieces.decode("utf-8", errors="replace")


@pytest.mark.parametrize("ignore_eos", [False, True])
def test_greedy_equals_llama_cpp_greedy_sampler(
    tiny_model: Path, runner: EngineRunner, ignore_eos: bool
) -> None:
    engine = runner.open(tiny_model, engine_config())
    prompts = [engine.tokenize(prompt) for prompt in PROMPTS]
    reference = [reference_greedy(engine, prompt, ignore_eos) for prompt in prompts]
    params = SamplingParams(max_tokens=MAX_TOKENS, temperature=0.0, ignore_eos=ignore_eos)
    ours = runner.complete_all(engine, [(prompt, params) for prompt in prompts])
    assert ours == [text_of(engine, tokens) for tokens in reference]


def llama_cpp_greedy(row: np.ndarray, banned: list[int]) -> int:
    """llama.cpp's greedy sampler, after a -inf logit bias on `banned`, applied to `row`."""
    n = len(row)
    chain = greedy_chain(n, banned)
    data = (llama_cpp.llama_token_data * n)()
    for token, logit in enumerate(row.tolist()):
        data[token].id, data[token].logit, data[token].p = token, logit, 0.0
    candidates = llama_cpp.llama_token_data_array(data, n, -1, False)
    try:
        llama_cpp.llama_sampler_apply(chain, ctypes.byref(candidates))
        return int(data[candidates.selected].id)
    finally:
        llama_cpp.llama_sampler_free(chain)


def test_greedy_token_matches_llama_cpp_on_ties_and_banned_winners() -> None:
    rng = np.random.default_rng(3)
    for case in range(300):
        n = int(rng.integers(2, 400))
        if case % 3 == 0:  # few distinct values: ties for the top everywhere
            row = rng.integers(-3, 3, size=n).astype(np.float32)
        else:
            row = rng.normal(size=n).astype(np.float32)
        banned = sorted({int(t) for t in rng.integers(0, n, size=int(rng.integers(0, 4)))})
        if banned and case % 2 == 0:  # a banned token holds the highest logit
            row[banned[0]] = row.max() + 1.0
        expected = llama_cpp_greedy(row, banned)
        assert greedy_token(row, frozenset(banned)) == expected, (case, banned)
