"""The engine against llama.cpp's own server, same model file, same cores, same run.

Run: .venv/bin/python bench/engine_serving.py [--threads 2] [--workdir var/bench]
     [--sdist TARBALL] [--repeats 3] [--sessions 32]
Builds what it needs first (bench/engine_setup.py), then starts each server in turn on a
free port and measures it as a client would (HTTP, OpenAI /v1/completions):

- completion tok/s at 1, 4, 8 clients (128-token completions, ignore_eos): demigod,
  llama-server (-np 8, continuous batching), python -m llama_cpp.server;
- 32 sessions x 6 turns interleaved, 4 clients: median over sessions of TTFT(turn 6) /
  TTFT(turn 1), and the turn-6 TTFT itself: demigod and llama-server;
- the same with the server restarted between turns 3 and 4, and (demigod) with turns 4-6
  sent to a second replica that shares only the state directory;
- RSS growth of the demigod process from a 1K- to a 16K-token context;
- p95 end-to-end latency of 64-token completions arriving (Poisson) at 80 % of the best
  measured 8-client throughput, demigod and llama-server under the same arrivals.
Throughput runs in rounds (--repeats): all three servers stay up and are measured back to
back in a rotating order; ratios are paired within a round, then the median is taken.
Prints a table and one JSON line. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from demigod.processes import ServerNotReadyError, free_port, wait_until_ready

sys.path.insert(0, str(Path(__file__).parent))
from engine_setup import BenchKit, prepare

COMPLETION_TOKENS = 128
LATENCY_TOKENS = 64
REPLY_TOKENS = 32
SLOTS = 8
N_CTX = 2048
START_TIMEOUT = 180.0
WORDS = (
    *("module", "function", "value", "list", "string", "number", "file", "system"),
    *("process", "thread", "memory", "state", "model", "token", "server", "request"),
    *("answer", "python", "import", "return", "class", "object", "error", "data"),
)


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0


@dataclass
class Results:
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    values: dict[str, object] = field(default_factory=dict)
    speeds: dict[tuple[str, int], float] = field(default_factory=dict)  # (server, clients)

    def add(self, key: str, label: str, value: object, shown: str) -> None:
        self.values[key] = value
        self.rows.append((label, shown, key))
        print(f"{label}: {shown}", file=sys.stderr, flush=True)  # progress; a run is long

    def attempt(self, key: str, label: str, measure: Callable[[], object]) -> object | None:
        """`measure()`, retried once: a server that dies mid-scenario (on a shared machine
        something may kill it) costs a rerun, not the whole benchmark. None on failure."""
        for _ in range(2):
            try:
                return measure()
            except (httpx.HTTPError, RuntimeError, ValueError) as exc:
                error = f"{type(exc).__name__}: {exc}"
                print(f"{label}: failed ({error}), retrying", file=sys.stderr, flush=True)
        self.add(key, label, {"error": error}, f"failed: {error}")
        return None


def start(name: str, command: list[str], port: int, env: dict[str, str], log: Path) -> Server:
    # Own session, no stdin: signals meant for the benchmark's group never reach the server.
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **env},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, f"{url}/v1/models", timeout=START_TIMEOUT, interval=0.3)
    except ServerNotReadyError as exc:
        raise RuntimeError(f"{name} {exc}; see {log}") from exc
    return Server(name, url, process)


def stop(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()


class Launcher:
    """Starts each kind of server on the bench model with the same threads and context."""

    def __init__(self, kit: BenchKit, workdir: Path, threads: int) -> None:
        self.kit = kit
        self.workdir = workdir
        self.threads = threads
        self.log = workdir / "servers.log"

    def llama_server(self) -> Server:
        port = free_port()
        command = [
            str(self.kit.llama_server),
            "-m", str(self.kit.model),
            "--host", "127.0.0.1", "--port", str(port),
            "-t", str(self.threads), "-tb", str(self.threads),
            "-np", str(SLOTS), "-c", str(N_CTX * SLOTS), "--cont-batching",
        ]  # fmt: skip
        return start("llama-server", command, port, {}, self.log)

    def python_server(self) -> Server:
        port = free_port()
        command = [
            str(self.kit.python_server), "-m", "llama_cpp.server",
            "--model", str(self.kit.model), "--host", "127.0.0.1", "--port", str(port),
            "--n_threads", str(self.threads), "--n_threads_batch", str(self.threads),
            "--n_ctx", str(N_CTX),
            # queue requests instead of cancelling the running one (its default)
            "--interrupt_requests", "False",
        ]  # fmt: skip
        return start("llama_cpp.server", command, port, {}, self.log)

    def demigod(
        self, states: str = "states", shared: str | None = None, n_ctx: int = N_CTX
    ) -> Server:
        port = free_port()
        env = {
            "DEMIGOD_ENGINE__N_THREADS": str(self.threads),
            "DEMIGOD_ENGINE__SLOTS": str(SLOTS),
            "DEMIGOD_ENGINE__N_CTX": str(n_ctx),
            "DEMIGOD_ENGINE__STATE_CACHE__DISK_DIR": str(self.workdir / states),
            "DEMIGOD_DATA_DIR": str(self.workdir / "demigod-data"),
            "DEMIGOD_LOG_LEVEL": "WARNING",
            # Engine against engine: the references have no auth, screen or audit log.
            "DEMIGOD_SECURITY__AUTH": "off",
            "DEMIGOD_WAF__ENABLED": "false",
            "DEMIGOD_AUDIT__ENABLED": "false",
        }
        if shared is not None:
            env["DEMIGOD_ENGINE__STATE_CACHE__SHARED_DIR"] = str(self.workdir / shared)
        command = [
            str(Path(sys.executable).parent / "demigod"),
            "serve", "--port", str(port), "--model", f"bench={self.kit.model}",
        ]  # fmt: skip
        return start("demigod", command, port, env, self.log)

    def fresh_states(self, *names: str) -> None:
        for name in names:
            shutil.rmtree(self.workdir / name, ignore_errors=True)


# -- client side ---------------------------------------------------------------------------


def completion_body(prompt: str, max_tokens: int, **extra: object) -> dict[str, object]:
    return {
        "model": "bench",
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "ignore_eos": True,
        **extra,
    }


async def complete(client: httpx.AsyncClient, prompt: str, max_tokens: int) -> int:
    """Non-streamed completion; completion tokens."""
    reply = await client.post("/v1/completions", json=completion_body(prompt, max_tokens))
    reply.raise_for_status()
    return int(reply.json()["usage"]["completion_tokens"])


async def sse_lines(reply: httpx.Response) -> AsyncIterator[str]:
    """The lines of an event stream, cut at "\n" only: httpx's aiter_lines also cuts at
    U+2028, U+0085 and the like, which a random model writes and servers send unescaped
    inside JSON strings."""
    buffered = ""
    async for chunk in reply.aiter_text():
        *lines, buffered = (buffered + chunk).split("\n")
        for line in lines:
            yield line.rstrip("\r")
    if buffered:
        yield buffered


async def stream(
    client: httpx.AsyncClient, prompt: str, max_tokens: int, session: str
) -> tuple[float, str]:
    """Streamed completion: (seconds to the first text, the whole text). `session` goes in
    `X-Session-Id`, which tells demigod to prepare the next turn (llama-server ignores it)."""
    started = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    body = completion_body(prompt, max_tokens, stream=True, stop=["\nUser:"])
    headers = {"X-Session-Id": session}
    async with client.stream("POST", "/v1/completions", json=body, headers=headers) as reply:
        reply.raise_for_status()
        async for line in sse_lines(reply):
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            text = choices[0].get("text") or ""
            if text and first is None:
                first = time.perf_counter() - started
            parts.append(text)
    return (first if first is not None else time.perf_counter() - started), "".join(parts)


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


async def throughput(server: Server, clients: int, requests_each: int) -> float:
    """Aggregate completion tokens per second of `clients` closed-loop clients."""
    async with httpx.AsyncClient(base_url=server.url, timeout=600) as client:

        async def one(index: int) -> int:
            rng = random.Random(index)
            total = 0
            for _ in range(requests_each):
                total += await complete(client, sentence(rng, 12), COMPLETION_TOKENS)
            return total

        await complete(client, "warm up", 4)
        started = time.perf_counter()
        tokens = sum(await asyncio.gather(*(one(i) for i in range(clients))))
        return tokens / (time.perf_counter() - started)


@dataclass
class Session:
    name: str
    rng: random.Random
    text: str = ""
    ttft: list[float] = field(default_factory=list)

    def next_prompt(self) -> str:
        return f"{self.text}User: {sentence(self.rng, 24)}\nAssistant:"


async def run_turns(url: str, sessions: list[Session], turns: range, clients: int) -> None:
    """Each client owns an equal share of the sessions and sends their turns interleaved
    (turn t of every one of its sessions before turn t + 1). A new connection per turn:
    llama-server closes a kept-alive connection after a streamed reply, and reusing it
    fails the next request (the same rule for every server keeps TTFT comparable)."""
    fresh = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=fresh) as client:

        async def worker(mine: list[Session]) -> None:
            for _ in turns:
                for session in mine:
                    prompt = session.next_prompt()
                    seconds, reply = await stream(client, prompt, REPLY_TOKENS, session.name)
                    session.ttft.append(seconds)
                    session.text = f"{prompt}{reply}\n"

        await asyncio.gather(*(worker(sessions[i::clients]) for i in range(clients)))


def session_ratios(sessions: list[Session]) -> tuple[float, float, float]:
    """(median TTFT turn 6 / turn 1, median turn-1 TTFT, median turn-6 TTFT)."""
    return (
        statistics.median(s.ttft[-1] / s.ttft[0] for s in sessions),
        statistics.median(s.ttft[0] for s in sessions),
        statistics.median(s.ttft[-1] for s in sessions),
    )


def conversations(
    servers: Callable[[], Server],
    count: int,
    clients: int,
    between: Callable[[Server], Server] | None = None,
) -> tuple[float, float, float]:
    """`count` sessions x 6 turns; `between` (if given) swaps the server after turn 3."""
    sessions = [Session(f"session-{i}", random.Random(1000 + i)) for i in range(count)]
    server = servers()
    try:
        if between is None:
            asyncio.run(run_turns(server.url, sessions, range(6), clients))
        else:
            asyncio.run(run_turns(server.url, sessions, range(3), clients))
            server = between(server)
            asyncio.run(run_turns(server.url, sessions, range(3), clients))
    finally:
        stop(server)
    return session_ratios(sessions)


async def open_loop_p95(server: Server, rate: float, seconds: float) -> float:
    """p95 end-to-end latency of 64-token completions arriving as a Poisson process."""
    rng = random.Random(7)
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=server.url, timeout=600) as client:

        async def one(prompt: str) -> None:
            started = time.perf_counter()
            await complete(client, prompt, LATENCY_TOKENS)
            latencies.append(time.perf_counter() - started)

        tasks = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            tasks.append(asyncio.create_task(one(sentence(rng, 12))))
            await asyncio.sleep(rng.expovariate(rate))
        await asyncio.gather(*tasks)
    latencies.sort()
    return latencies[int(0.95 * (len(latencies) - 1))]


def rss_growth(launcher: Launcher) -> tuple[int, int]:
    """demigod's RSS after a 1K-token and then a 16K-token context (pure SSM)."""
    server = launcher.demigod(states="states-rss", n_ctx=17000)
    try:
        sizes = []
        for words in (1000, 16000):
            rng = random.Random(words)
            prompt = sentence(rng, words)
            asyncio.run(_one_completion(server.url, prompt))
            sizes.append(server.rss_bytes())
        return sizes[0], sizes[1]
    finally:
        stop(server)


async def _one_completion(url: str, prompt: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=900) as client:
        await complete(client, prompt, 8)


def with_server(
    make: Callable[[], Server], work: Callable[[Server], Coroutine[Any, Any, float]]
) -> float:
    server = make()
    try:
        return asyncio.run(work(server))
    finally:
        stop(server)


PARTS = ("throughput", "sessions", "memory", "latency")


def run(
    kit: BenchKit, workdir: Path, threads: int, repeats: int, sessions: int, parts: set[str]
) -> Results:
    launcher = Launcher(kit, workdir, threads)
    results = Results()
    if "throughput" in parts:
        throughput_rows(launcher, results, repeats)
    if "sessions" in parts:
        session_rows(launcher, results, sessions)
    if "memory" in parts:
        memory_row(launcher, results)
    if "latency" in parts:
        latency_row(launcher, results, results.speeds)
    return results


def throughput_rows(launcher: Launcher, results: Results, repeats: int) -> None:
    """Every server stays up (idle ones use no CPU) and each round measures them back to
    back, in a rotating order, at each client count: the shared machine's slow drifts then
    hit all of them alike, and the ratios are taken within a round (paired), then the
    median over rounds."""
    makers: dict[str, Callable[[], Server]] = {
        "demigod": launcher.demigod,
        "llama-server": launcher.llama_server,
        "llama_cpp.server": launcher.python_server,
    }
    launcher.fresh_states("states")
    servers = {name: make() for name, make in makers.items()}
    samples: dict[tuple[str, int], list[float]] = {}
    try:
        for round_ in range(repeats):
            for clients in (1, 4, 8):
                names = list(servers)
                for name in names[round_ % 3 :] + names[: round_ % 3]:
                    each = 2 if clients > 1 else 4

                    def measure(n: str = name, c: int = clients, e: int = each) -> float:
                        if servers[n].process.poll() is not None:  # died: a fresh one
                            servers[n] = makers[n]()
                        return asyncio.run(throughput(servers[n], c, e))

                    label = f"completion tok/s, {clients} client(s), {name}, round {round_ + 1}"
                    speed = results.attempt(f"tok_s_{name}_{clients}", label, measure)
                    if isinstance(speed, float):
                        samples.setdefault((name, clients), []).append(speed)
                        print(f"{label}: {speed:.1f}", file=sys.stderr, flush=True)
    finally:
        for server in servers.values():
            stop(server)
    for (name, clients), speeds in samples.items():
        median = statistics.median(speeds)
        results.speeds[(name, clients)] = median
        key, label = f"tok_s_{name}_{clients}", f"completion tok/s, {clients} client(s), {name}"
        results.add(key, label, round(median, 1), f"{median:.1f} (median of {len(speeds)})")
    for clients, reference in ((1, "llama-server"), (8, "llama-server"), (8, "llama_cpp.server")):
        ours, theirs = samples.get(("demigod", clients), []), samples.get((reference, clients), [])
        paired = [a / b for a, b in zip(ours, theirs, strict=False)]
        ratio = statistics.median(paired) if paired else float("nan")
        results.add(
            f"ratio_vs_{reference.replace('-', '_').replace('.', '_')}_{clients}",
            f"demigod / {reference} tok/s, {clients} client(s), median of paired rounds",
            round(ratio, 3),
            f"{ratio:.2f}x ({', '.join(f'{r:.2f}' for r in paired)})",
        )


def session_rows(launcher: Launcher, results: Results, sessions: int) -> None:
    def sessions_row(
        key: str, label: str, measure: Callable[[], tuple[float, float, float]]
    ) -> None:
        outcome = results.attempt(key, label, measure)
        if not isinstance(outcome, tuple):
            return
        ratio, first, sixth = outcome
        values = {"ratio": ratio, "ttft_turn1_s": first, "ttft_turn6_s": sixth}
        results.add(
            key,
            label,
            {name: round(value, 4) for name, value in values.items()},
            f"ratio {ratio:.2f} (turn 1 {first * 1000:.0f} ms, turn 6 {sixth * 1000:.0f} ms)",
        )

    launcher.fresh_states("states")
    sessions_row(
        "sessions_demigod",
        f"{sessions} sessions x 6 turns, 4 clients: TTFT(6)/TTFT(1), demigod",
        lambda: conversations(launcher.demigod, sessions, 4),
    )
    sessions_row(
        "sessions_llama_server",
        f"{sessions} sessions x 6 turns, 4 clients: TTFT(6)/TTFT(1), llama-server",
        lambda: conversations(launcher.llama_server, sessions, 4),
    )
    sessions_row(
        "sessions_llama_server_1_client",
        f"{sessions} sessions x 6 turns, 1 client: TTFT(6)/TTFT(1), llama-server",
        lambda: conversations(launcher.llama_server, sessions, 1),
    )

    def restart_demigod(server: Server) -> Server:
        stop(server)
        return launcher.demigod()

    def restart_llama(server: Server) -> Server:
        stop(server)
        return launcher.llama_server()

    launcher.fresh_states("states")
    sessions_row(
        "restart_demigod",
        "same, worker restarted after turn 3, demigod",
        lambda: conversations(launcher.demigod, sessions, 4, restart_demigod),
    )
    sessions_row(
        "restart_llama_server",
        "same, 1 client, server restarted after turn 3, llama-server",
        lambda: conversations(launcher.llama_server, sessions, 1, restart_llama),
    )

    launcher.fresh_states("replica-a", "replica-b", "shared")
    second: list[Server] = []

    def first_replica() -> Server:
        second.append(launcher.demigod(states="replica-b", shared="shared"))
        return launcher.demigod(states="replica-a", shared="shared")

    def move(server: Server) -> Server:
        stop(server)  # the first replica goes away; its sessions continue on the second
        return second[0]

    sessions_row(
        "replica_demigod",
        "same, turns 4-6 on a second replica (shared dir only), demigod",
        lambda: conversations(first_replica, sessions, 4, move),
    )


def memory_row(launcher: Launcher, results: Results) -> None:
    label = "demigod RSS growth, 1K -> 16K tokens of context"
    sizes = results.attempt("rss_growth_1k_16k", label, lambda: rss_growth(launcher))
    if isinstance(sizes, tuple):
        small, large = sizes
        growth = large / small - 1
        results.add(
            "rss_growth_1k_16k",
            label,
            {"rss_1k": small, "rss_16k": large, "growth": round(growth, 4)},
            f"{growth * 100:+.1f} % ({small / 2**20:.0f} -> {large / 2**20:.0f} MiB)",
        )


def latency_row(launcher: Launcher, results: Results, speeds: dict[tuple[str, int], float]) -> None:
    """p95 of demigod and of llama-server under the same arrivals: 80 % of the best
    8-client throughput the throughput part measured (run it first). bench/latency_bound.py
    gives the lowest p95 any scheduler could reach on this CPU."""
    max_speed = max(speeds.get((name, 8), 0.0) for name in ("demigod", "llama-server"))
    if max_speed <= 0:
        print("latency: skipped, it needs the throughput part", file=sys.stderr)
        return
    rate = 0.8 * max_speed / LATENCY_TOKENS
    for key, name, make in (
        ("p95_latency_80pct", "demigod", launcher.demigod),
        ("p95_latency_80pct_llama_server", "llama-server", launcher.llama_server),
    ):
        launcher.fresh_states("states")
        label = f"p95 latency, 64-token completions at {rate:.2f} req/s (80 % of max), {name}"

        def measure(m: Callable[[], Server] = make) -> float:
            return with_server(m, lambda server: open_loop_p95(server, rate, 60))

        p95 = results.attempt(key, label, measure)
        if isinstance(p95, float):
            results.add(key, label, round(p95, 3), f"{p95:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("var/bench"))
    parser.add_argument("--sdist", type=Path, default=None, help="llama-cpp-python sdist tarball")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--repeats", type=int, default=3, help="throughput rounds (median of paired ratios)"
    )
    parser.add_argument("--sessions", type=int, default=32, help="conversations per scenario")
    parser.add_argument(
        "--part", action="append", choices=PARTS, help="run only these parts (repeatable)"
    )
    args = parser.parse_args()
    kit = prepare(args.workdir, args.sdist)
    started = datetime.now(UTC)
    parts = set(args.part or PARTS)
    results = run(kit, args.workdir, args.threads, args.repeats, args.sessions, parts)
    width = max(len(label) for label, _, _ in results.rows)
    print(f"{'measure':<{width}}  value")
    for label, shown, _ in results.rows:
        print(f"{label:<{width}}  {shown}")
    print(
        json.dumps(
            {
                "bench": "engine_serving",
                "date": started.isoformat(timespec="seconds"),
                "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
                "threads": args.threads,
                "load_avg_at_start": os.getloadavg(),
                "model": kit.model.name,
                **results.values,
            }
        )
    )


if __name__ == "__main__":
    main()
