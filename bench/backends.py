"""Decode speed of the two backends on the same tiny model: llama.cpp (Q4_0 GGUF) against
transformers (the HF folder it was converted from, float32 on CPU), on Falcon-H1, and
Zamba2, which only transformers runs.

Run: .venv/bin/python bench/backends.py [--threads 1] [--tokens 64] [--workdir var/bench/backends]

Each model is a random-init tiny model from demigod.lifecycle.tiny_models (2 layers,
hidden 64). One request at a time through the Engine protocol, greedy, ignore_eos; the
figure is generated tokens / seconds from the request to its last event (prefill of a
short prompt included). Prints a table and one JSON line. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

from demigod.config import EngineConfig, StateCacheConfig
from demigod.engines.base import Engine, GenerationRequest, SamplingParams
from demigod.engines.llama_cpp import LlamaCppEngine
from demigod.engines.transformers_engine import TransformersEngine
from demigod.lifecycle.convert import convert_hf_to_gguf
from demigod.lifecycle.quantize import quantize_gguf
from demigod.lifecycle.tiny_models import build_tiny
from demigod.lifecycle.toolkit import ensure_toolkit

PROMPT = "The os module provides a portable way of using operating system functionality."


async def tokens_per_second(engine: Engine, tokens: int, repeats: int) -> float:
    params = SamplingParams(max_tokens=tokens, temperature=0.0, ignore_eos=True)
    prompt = engine.tokenize(PROMPT)
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        count = 0
        async with engine.generate(GenerationRequest(prompt, params)) as events:
            async for event in events:
                count = event.completion_tokens
        best = max(best, count / (time.perf_counter() - started))
    await engine.close()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("var/bench/backends"))
    args = parser.parse_args()
    toolkit = ensure_toolkit(Path("var"))
    config = EngineConfig(
        n_threads=args.threads, slots=1, n_ctx=512, state_cache=StateCacheConfig(enabled=False)
    )
    rows = []
    # Families whose tiny model carries HF tokenizer files (transformers needs them).
    for family in ("falcon-h1", "zamba2"):
        hf_dir = args.workdir / family / "hf"
        if not (hf_dir / "config.json").is_file():
            build_tiny(family, hf_dir, toolkit)
        engines: list[tuple[str, Engine]] = [
            ("transformers F32", TransformersEngine(family, hf_dir, config))
        ]
        if family != "zamba2":
            gguf = args.workdir / family / f"{family}.Q4_0.gguf"
            if not gguf.is_file():
                f16 = convert_hf_to_gguf(hf_dir, gguf.with_suffix(".F16.gguf"), toolkit)
                quantize_gguf(f16, gguf, "Q4_0")
            engines.insert(0, ("llama.cpp Q4_0", LlamaCppEngine(family, gguf, config)))
        for backend, engine in engines:
            speed = asyncio.run(tokens_per_second(engine, args.tokens, args.repeats))
            rows.append({"family": family, "backend": backend, "tok_s": round(speed, 1)})
    print(f"{'family':<12}{'backend':<20}{'tok/s':>8}")
    for row in rows:
        print(f"{row['family']:<12}{row['backend']:<20}{row['tok_s']:>8}")
    print(
        json.dumps(
            {
                "bench": "backends",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": platform.machine(),
                "threads": args.threads,
                "tokens": args.tokens,
                "rows": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
