"""Traffic and processes for the soak and fault benchmarks (run from bench/ as scripts).

`Traffic` sends completions at a fixed rate (open loop: arrivals do not wait for answers,
as independent users do not) and records every outcome with its X-Request-ID, so a run
can be checked against the audit log. `Mesh` starts a gateway in front of worker
processes from one config file, as `demigod gateway` and `demigod worker` run in
production, and reads each process's resident memory.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from demigod.processes import free_port, stop_process, wait_until_ready

START_TIMEOUT = 180.0
BODY = {"model": "tiny", "prompt": "once upon a time", "max_tokens": 16, "ignore_eos": True}


@dataclass(frozen=True)
class Outcome:
    request_id: str
    sent: float  # wall clock
    seconds: float
    status: int  # 0: no HTTP answer
    code: str | None  # the OpenAI error code, or the exception's class


@dataclass
class Traffic:
    """Completions to `url` at `rate` per second, from start() until stop()."""

    url: str
    rate: float
    body: dict[str, Any] = field(default_factory=lambda: dict(BODY))
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 60.0
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Traffic:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[Outcome]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 10)
        return self.outcomes

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
        async with httpx.AsyncClient(
            base_url=self.url, timeout=self.timeout, limits=limits
        ) as client:
            pending: set[asyncio.Task[None]] = set()
            n = 0
            next_at = time.monotonic()
            while not self._stop.is_set():
                next_at += random.expovariate(self.rate)  # Poisson arrivals
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                task = asyncio.create_task(self._one(client, f"bench-{os.getpid()}-{n}"))
                pending.add(task)
                task.add_done_callback(pending.discard)
                n += 1
            if pending:
                await asyncio.wait(pending)

    async def _one(self, client: httpx.AsyncClient, request_id: str) -> None:
        sent, started = time.time(), time.perf_counter()
        status, code = 0, None
        try:
            response = await client.post(
                "/v1/completions",
                json=self.body,
                headers={**self.headers, "x-request-id": request_id},
            )
            status = response.status_code
            if status != 200:
                code = str(response.json().get("error", {}).get("code"))
        except (httpx.HTTPError, ValueError) as exc:
            code = type(exc).__name__
        self.outcomes.append(Outcome(request_id, sent, time.perf_counter() - started, status, code))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def rss_bytes(pid: int) -> int:
    """Resident memory of process `pid` (/proc/PID/status VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass
class Mesh:
    """A gateway on a free port in front of `workers` worker processes of model `tiny`,
    all from one config file in `work`; `config` adds to (and overrides) the defaults."""

    work: Path
    model: Path
    workers: int = 2
    config: dict[str, Any] = field(default_factory=dict)
    worker_hosts: list[str] = field(default_factory=list)  # default 127.0.0.1 each
    worker_prefix: dict[int, list[str]] = field(default_factory=dict)  # e.g. ip netns exec
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    url: str = ""
    worker_urls: list[str] = field(default_factory=list)

    def start(self) -> Mesh:
        self.work.mkdir(parents=True, exist_ok=True)
        ports = [free_port() for _ in range(self.workers)]
        hosts = self.worker_hosts or ["127.0.0.1"] * self.workers
        self.worker_urls = [
            f"http://{host}:{port}" for host, port in zip(hosts, ports, strict=True)
        ]
        config = {
            "data_dir": str(self.work / "data"),
            "models": [{"name": "tiny", "path": str(self.model)}],
            "upstreams": [{"name": "tiny", "urls": self.worker_urls}],
            "engine": {"n_threads": 1, "slots": 4},
            "security": {"auth": "off"},
            "log_json": True,
            **self.config,
        }
        config_file = self.work / "mesh.yaml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        demigod = [sys.executable, "-m", "demigod"]
        for index, (host, port) in enumerate(zip(hosts, ports, strict=True)):
            command = [*demigod, "worker", "--model", "tiny", "--host", host, "--port", str(port)]
            self._spawn(
                f"worker-{index}",
                [*self.worker_prefix.get(index, []), *command, "--config", str(config_file)],
            )
        for index, url in enumerate(self.worker_urls):
            self._ready(f"worker-{index}", f"{url}/readyz")
        port = free_port()
        self._spawn(
            "gateway", [*demigod, "gateway", "--port", str(port), "--config", str(config_file)]
        )
        self.url = f"http://127.0.0.1:{port}"
        self._ready("gateway", f"{self.url}/readyz")
        return self

    def rss(self) -> dict[str, int]:
        return {name: rss_bytes(p.pid) for name, p in self.processes.items() if p.poll() is None}

    def stop(self) -> None:
        for process in self.processes.values():
            stop_process(process, 20)  # type: ignore[arg-type]

    def _spawn(self, name: str, command: list[str]) -> None:
        log = (self.work / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def _ready(self, name: str, url: str) -> None:
        wait_until_ready(self.processes[name], url, timeout=START_TIMEOUT)
