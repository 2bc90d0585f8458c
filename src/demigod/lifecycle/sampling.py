"""Sample text from a GGUF model with llama.cpp, and measure how repetitive it is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    """A completion and the share of distinct tokens in it (1.0: no token repeats)."""

    text: str
    n_tokens: int
    distinct_token_share: float


def sample_text(
    gguf: Path,
    prompt: str,
    max_tokens: int = 64,
    temperature: float = 0.8,
    top_p: float = 0.95,
    seed: int = 0,
    n_ctx: int = 512,
) -> Sample:
    """Complete `prompt` with the model in `gguf`, sampling at `temperature` from `seed`.

    An undertrained model sampled greedily loops; a share of distinct tokens far below 1
    at temperature ~0.8 is the same failure. Raises ValueError when `gguf` does not exist.
    """
    import llama_cpp

    if not gguf.is_file():
        raise ValueError(f"no GGUF file at {gguf}")
    model = llama_cpp.Llama(model_path=str(gguf), n_ctx=n_ctx, seed=seed, verbose=False)
    try:
        completion = model.create_completion(
            prompt, max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed
        )
        text = str(completion["choices"][0]["text"])  # type: ignore[index]
        tokens = model.tokenize(text.encode("utf-8"), add_bos=False, special=True)
    finally:
        model.close()
    share = len(set(tokens)) / len(tokens) if tokens else 0.0
    return Sample(text=text, n_tokens=len(tokens), distinct_token_share=share)
