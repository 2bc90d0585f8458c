"""How the engine defaults (slots, n_batch, n_threads) were chosen: in-process measurements.

Run: .venv/bin/python bench/engine_defaults.py [--model var/bench/mamba-768x24-random.Q4_0.gguf]
(the model comes from bench/engine_setup.py). For each setting it reports:
- aggregate completion tok/s of 16 concurrent 64-token greedy requests (slots, threads);
- while 3 streams generate, a 1500-token prompt arrives: its TTFT and the longest gap
  between two tokens of the running streams (n_batch: the prefill chunk).
Prints a table and one JSON line. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

from demigod.config import EngineConfig, StateCacheConfig
from demigod.engines.base import GenerationRequest, SamplingParams
from demigod.engines.llama_cpp import LlamaCppEngine

GREEDY = SamplingParams(max_tokens=64, temperature=0.0, ignore_eos=True)
LONG_PROMPT_WORDS = 1500


async def timed(engine: LlamaCppEngine, tokens: list[int], params: SamplingParams) -> list[float]:
    """Arrival times of every event of one generation."""
    stamps = []
    async with engine.generate(GenerationRequest(tokens, params)) as events:
        async for _ in events:
            stamps.append(time.perf_counter())
    return stamps


async def throughput(engine: LlamaCppEngine, clients: int) -> float:
    prompts = [engine.tokenize(f"Request {i} is about the os module") for i in range(clients)]
    await timed(engine, prompts[0], SamplingParams(max_tokens=4, temperature=0.0))
    started = time.perf_counter()
    await asyncio.gather(*(timed(engine, p, GREEDY) for p in prompts))
    return clients * GREEDY.max_tokens / (time.perf_counter() - started)


async def prefill_stall(engine: LlamaCppEngine) -> tuple[float, float]:
    """(TTFT of a long prompt, longest token gap of the streams running meanwhile)."""
    long_prompt = engine.tokenize(" ".join(["module"] * LONG_PROMPT_WORDS))
    running = SamplingParams(max_tokens=400, temperature=0.0, ignore_eos=True)
    streams = [
        asyncio.create_task(timed(engine, engine.tokenize(f"stream {i}"), running))
        for i in range(3)
    ]
    await asyncio.sleep(0.3)
    arrived = time.perf_counter()
    stamps = await timed(engine, long_prompt, SamplingParams(max_tokens=1, temperature=0.0))
    ttft = stamps[0] - arrived
    gaps = []
    for finished in await asyncio.gather(*streams):
        window = [t for t in finished if arrived - 0.05 <= t <= stamps[0] + 0.05]
        gaps += [b - a for a, b in itertools.pairwise(window)]
    return ttft, max(gaps, default=0.0)


def engine(model: Path, **settings: object) -> LlamaCppEngine:
    config = EngineConfig(n_ctx=2048, state_cache=StateCacheConfig(enabled=False), **settings)
    return LlamaCppEngine("bench", model, config)


async def measure(model: Path) -> list[tuple[str, str, object]]:
    rows: list[tuple[str, str, object]] = []
    # Two threads only at the widest batch: on two shared cores they are the slow case.
    for threads, slots in ((1, 1), (1, 4), (1, 8), (1, 16), (2, 8)):
        loaded = engine(model, n_threads=threads, slots=slots)
        speed = await throughput(loaded, 16)
        await loaded.close()
        rows.append((f"threads={threads} slots={slots}", f"{speed:.1f} tok/s", speed))
    for chunk in (64, 128, 256, 512):
        loaded = engine(model, n_threads=1, slots=4, n_batch=chunk)
        ttft, gap = await prefill_stall(loaded)
        await loaded.close()
        rows.append(
            (
                f"n_batch={chunk}: 1500-token prompt among 3 streams",
                f"TTFT {ttft * 1000:.0f} ms, longest stream gap {gap * 1000:.0f} ms",
                {"ttft_s": round(ttft, 4), "max_gap_s": round(gap, 4)},
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, default=Path("var/bench/mamba-768x24-random.Q4_0.gguf")
    )
    args = parser.parse_args()
    started = datetime.now(UTC)
    rows = asyncio.run(measure(args.model))
    width = max(len(label) for label, _, _ in rows)
    for label, shown, _ in rows:
        print(f"{label:<{width}}  {shown}")
    print(
        json.dumps(
            {
                "bench": "engine_defaults",
                "date": started.isoformat(timespec="seconds"),
                "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
                "load_avg": os.getloadavg(),
                **{label: value for label, _, value in rows},
            }
        )
    )


if __name__ == "__main__":
    main()
