"""How many bytes one sequence's saved state takes (llama_state_seq_get_size), by context.

A pure SSM's state is the same size whatever the context; a hybrid (Jamba, Falcon-H1,
Granite-H) also saves its attention layers' KV cells, which grow with every token. The
state cache stores exactly these bytes per entry, so this is what a cached turn costs.
"""

from __future__ import annotations

from pathlib import Path

import llama_cpp

from demigod.engines.llama_cpp import init_backend
from demigod.lifecycle.errors import LifecycleError


class StateSizeError(LifecycleError):
    """llama.cpp could not load the model or evaluate the tokens."""


def sequence_state_bytes(
    gguf: Path, context_lengths: list[int], n_threads: int = 1
) -> dict[int, int]:
    """For each length in `context_lengths`, the state bytes of one sequence that has
    evaluated that many tokens of `gguf`'s model. Raises StateSizeError."""
    init_backend(verbose=False)
    model = llama_cpp.llama_model_load_from_file(
        str(gguf).encode(), llama_cpp.llama_model_default_params()
    )
    if not model:
        raise StateSizeError(f"llama.cpp could not load {gguf}")
    longest = max(context_lengths)
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = longest + 16
    params.n_batch = params.n_ubatch = longest
    params.n_seq_max = 1
    params.n_threads = params.n_threads_batch = n_threads
    ctx = llama_cpp.llama_init_from_model(model, params)
    try:
        if not ctx:
            raise StateSizeError(f"llama.cpp could not create a context for {gguf}")
        memory = llama_cpp.llama_get_memory(ctx)
        vocab = llama_cpp.llama_model_get_vocab(model)
        token = max(1, llama_cpp.llama_vocab_bos(vocab))  # any valid id will do
        sizes: dict[int, int] = {}
        for length in sorted(set(context_lengths)):
            llama_cpp.llama_memory_seq_rm(memory, 0, -1, -1)
            batch = llama_cpp.llama_batch_init(length, 0, 1)
            try:
                for index in range(length):
                    batch.token[index] = token
                    batch.pos[index] = index
                    batch.n_seq_id[index] = 1
                    batch.seq_id[index][0] = 0
                    batch.logits[index] = index == length - 1
                batch.n_tokens = length
                if llama_cpp.llama_decode(ctx, batch) != 0:
                    raise StateSizeError(f"llama_decode failed on {length} tokens of {gguf}")
            finally:
                llama_cpp.llama_batch_free(batch)
            sizes[length] = int(llama_cpp.llama_state_seq_get_size(ctx, 0))
        return sizes
    finally:
        if ctx:
            llama_cpp.llama_free(ctx)
        llama_cpp.llama_model_free(model)
