"""The lowest p95 latency any llama.cpp server could reach on this CPU at 80 % load.

Run: .venv/bin/python bench/latency_bound.py [--model var/bench/mamba-768x24-random.Q4_0.gguf]
     [--threads 2] [--slots 8] [--rate REQ_PER_S]
1. Times one `llama_decode` of k sequences x 1 token, k = 1..slots, on the benchmark model
   (bench/engine_setup.py builds it) with only those k sequences holding a state: 3 passes
   over every k, 30 steps of one k in a row, the median for each k. The shared host's
   speed drifts by a third over minutes: rerun when the numbers look slow.
2. Max throughput is the best k / t(k). Requests for 64 tokens arrive as a Poisson process
   at 80 % of it; a simulated server runs up to m of them per step, a step of k running
   sequences taking t(k) (`--rate` sets another arrival rate). Prefill, sampling, HTTP and
   the client cost nothing here, so the p95 it reports is a lower bound for every scheduler
   and every m.
Prints a table and one JSON line. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import random
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import llama_cpp

COMPLETION_TOKENS = 64
LOAD = 0.8
STEPS = 30
PASSES = 3
PROMPT_TOKENS = 12
SIMULATED_REQUESTS = 20000


def step_seconds(model_path: Path, threads: int, slots: int) -> dict[int, float]:
    """Median seconds of one decode step with k sequences of one token each, k = 1..slots."""
    llama_cpp.llama_backend_init()
    model = llama_cpp.llama_model_load_from_file(
        str(model_path).encode(), llama_cpp.llama_model_default_params()
    )
    if not model:
        raise SystemExit(f"llama.cpp could not load {model_path}")
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = 2048 * slots
    params.n_batch = params.n_ubatch = PROMPT_TOKENS * slots
    params.n_seq_max = slots
    params.kv_unified = False
    params.n_threads = params.n_threads_batch = threads
    ctx = llama_cpp.llama_init_from_model(model, params)
    batch = llama_cpp.llama_batch_init(PROMPT_TOKENS * slots, 0, 1)
    memory = llama_cpp.llama_get_memory(ctx)

    def decode(tokens: list[tuple[int, int, int]]) -> float:
        """(sequence, position, token) each; seconds of the llama_decode."""
        for index, (sequence, position, token) in enumerate(tokens):
            batch.token[index], batch.pos[index] = token, position
            batch.n_seq_id[index], batch.seq_id[index][0] = 1, sequence
            batch.logits[index] = True
        batch.n_tokens = len(tokens)
        started = time.perf_counter()
        if llama_cpp.llama_decode(ctx, batch) != 0:
            raise SystemExit("llama_decode failed")
        return time.perf_counter() - started

    samples: dict[int, list[float]] = {k: [] for k in range(1, slots + 1)}
    try:
        for _ in range(PASSES):
            for k in samples:
                # Only the k running sequences hold a state, as in a server: llama.cpp's
                # step also copies the states of other live sequences.
                for sequence in range(slots):
                    llama_cpp.llama_memory_seq_rm(memory, sequence, -1, -1)
                for sequence in range(k):
                    decode([(sequence, p, 100 + sequence + p) for p in range(PROMPT_TOKENS)])
                for step in range(STEPS):
                    position = PROMPT_TOKENS + step
                    samples[k].append(decode([(s, position, 200 + step) for s in range(k)]))
        return {k: statistics.median(times) for k, times in samples.items()}
    finally:
        llama_cpp.llama_batch_free(batch)
        llama_cpp.llama_free(ctx)
        llama_cpp.llama_model_free(model)


def simulate(costs: dict[int, float], limit: int, rate: float, seed: int = 1) -> list[float]:
    """Latencies of Poisson arrivals at `rate` on a server running up to `limit` sequences
    per step, first come first served, each request COMPLETION_TOKENS steps long."""
    rng = random.Random(seed)
    arrivals, now = [], 0.0
    for _ in range(SIMULATED_REQUESTS):
        now += rng.expovariate(rate)
        arrivals.append(now)
    waiting: collections.deque[float] = collections.deque()
    running: list[list[float]] = []  # [arrival, tokens left]
    latencies: list[float] = []
    clock, next_arrival = 0.0, 0
    while len(latencies) < SIMULATED_REQUESTS:
        while next_arrival < SIMULATED_REQUESTS and arrivals[next_arrival] <= clock:
            waiting.append(arrivals[next_arrival])
            next_arrival += 1
        while waiting and len(running) < limit:
            running.append([waiting.popleft(), COMPLETION_TOKENS])
        if not running:
            clock = arrivals[next_arrival]
            continue
        clock += costs[len(running)]
        for request in running:
            request[1] -= 1
        latencies += [clock - arrival for arrival, left in running if left == 0]
        running = [request for request in running if request[1] > 0]
    return sorted(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, default=Path("var/bench/mamba-768x24-random.Q4_0.gguf")
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="requests per second to simulate (default: 80 %% of the measured decode maximum;"
        " pass the rate bench/engine_serving.py used to compare with its p95)",
    )
    args = parser.parse_args()
    started = datetime.now(UTC)
    costs = step_seconds(args.model, args.threads, args.slots)
    max_speed = max(k / seconds for k, seconds in costs.items())
    rate = args.rate or LOAD * max_speed / COMPLETION_TOKENS
    print(f"{'sequences per step':<20} {'step ms':>8} {'tok/s':>7}")
    for k, seconds in costs.items():
        print(f"{k:<20} {seconds * 1000:>8.2f} {k / seconds:>7.1f}")
    share = rate * COMPLETION_TOKENS / max_speed
    print(f"\n{rate:.2f} req/s of {COMPLETION_TOKENS}-token completions", end=" ")
    print(f"({share:.0%} of {max_speed:.1f} tok/s)")
    print(f"{'at most m running':<20} {'p95 s':>8} {'mean s':>7}")
    bounds = {}
    for limit in range(1, args.slots + 1):
        latencies = simulate(costs, limit, rate)
        p95, mean = latencies[int(0.95 * (len(latencies) - 1))], statistics.fmean(latencies)
        bounds[limit] = {"p95_s": round(p95, 3), "mean_s": round(mean, 3)}
        print(f"{limit:<20} {p95:>8.2f} {mean:>7.2f}")
    best = min(bounds, key=lambda limit: bounds[limit]["p95_s"])
    print(f"\nlowest p95: {bounds[best]['p95_s']:.2f} s with at most {best} running")
    print(
        json.dumps(
            {
                "bench": "latency_bound",
                "date": started.isoformat(timespec="seconds"),
                "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
                "threads": args.threads,
                "model": args.model.name,
                "step_ms": {k: round(s * 1000, 3) for k, s in costs.items()},
                "max_tok_s": round(max_speed, 1),
                "rate_req_s": round(rate, 3),
                "bounds": bounds,
                "best_p95_s": bounds[best]["p95_s"],
            }
        )
    )


if __name__ == "__main__":
    main()
