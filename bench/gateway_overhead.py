"""What the gateway costs: a fake OpenAI upstream measured direct, through `demigod
gateway` and through a LiteLLM proxy, same upstream, same machine, same run.

Run: .venv/bin/python bench/gateway_overhead.py [--seconds 10] [--connections 64]
     [--workdir var/bench] [--skip-litellm]

- The upstream is `--fake-upstream PORT` of this script: a raw asyncio (uvloop when
  installed) HTTP/1.1 server that answers every request with one canned chat completion,
  keep-alive, no parsing beyond the headers; it runs alone in one process (one core).
  Its own ceiling is measured too (row `upstream direct`).
- Load comes from `wrk` (Debian package): one connection for latency (p50, p99), then
  `--connections` connections for requests/s.
- `demigod gateway --upstream fake=URL --workers N` for N = 1, 2, three ways:
  `gateway all on` as shipped: API-key auth (a key made with `demigod keys create`),
  quota, WAF screen, routing policy, Prometheus metrics, audit log (fsync per group
  commit); `gateway auth`: the same without the WAF screen and the audit log (the
  issue's "auth, metrics and routing on"); `gateway bare`: auth off too.
- LiteLLM proxy `--num_workers N` for N = 1, 2, installed with pip into
  `<workdir>/litellm-venv` on first run, configured with the same upstream, no database,
  a master key (it refuses to start without one) sent as the bearer token.

Prints a table and one JSON line. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from demigod.processes import ServerNotReadyError, free_port, wait_until_ready

MODEL = "fake"
# LiteLLM refuses to start without a master key; with one and no database it checks the
# bearer token against it (its cheapest auth, comparable to the gateway's API key).
LITELLM_MASTER_KEY = "sk-gateway-bench-0123456789abcdef0123456789abcdef"
START_TIMEOUT = 300.0  # LiteLLM with 2 workers takes minutes to start on a busy machine
REQUEST_BODY = json.dumps(
    {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hello in one word."}],
        "max_tokens": 8,
    }
)
CANNED = json.dumps(
    {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1700000000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8},
    }
).encode()
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(CANNED)).encode()
    + b"\r\n\r\n"
    + CANNED
)
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


class _FakeOpenAI(asyncio.Protocol):
    """Answers each complete request (headers + content-length body) with RESPONSE."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            match = _CONTENT_LENGTH.search(self.buffer, 0, end + 2)
            total = end + 4 + (int(match.group(1)) if match else 0)
            if len(self.buffer) < total:
                return
            self.buffer = self.buffer[total:]
            self.transport.write(RESPONSE)


def run_fake_upstream(port: int) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(_FakeOpenAI, "127.0.0.1", port, backlog=4096)
    )
    loop.run_until_complete(server.serve_forever())


@dataclass
class Row:
    target: str
    processes: int
    p50_ms_1conn: float
    p99_ms_1conn: float
    rps: float
    connections: int


def wrk_script(api_key: str | None = None) -> str:
    script = (
        f'wrk.method = "POST"\nwrk.body = {json.dumps(REQUEST_BODY)}\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    if api_key:
        script += f'wrk.headers["Authorization"] = "Bearer {api_key}"\n'
    return script


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url: str, connections: int, seconds: int, script: Path) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, requests/s) of `wrk --latency` against url; non-2xx responses fail."""
    threads = min(connections, 2)
    done = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "--timeout",
            "30s",
            "-s",
            script,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    out = done.stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"errors under load against {url}:\n{out}")
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return p50, p99, rps


def measure(name: str, processes: int, url: str, args: argparse.Namespace, script: Path) -> Row:
    wrk(url, 1, 2, script)  # warm up: connections, lazy imports, caches
    p50, p99, _ = wrk(url, 1, args.seconds, script)
    _, _, rps = wrk(url, args.connections, args.seconds, script)
    row = Row(name, processes, round(p50, 3), round(p99, 3), round(rps, 1), args.connections)
    print(
        f"{row.target:<24} {row.processes:>5} {row.p50_ms_1conn:>10.3f} "
        f"{row.p99_ms_1conn:>10.3f} {row.rps:>10.1f}",
        flush=True,
    )
    return row


def start(command: list[str], ready_url: str, log: Path, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    process = subprocess.Popen(
        command,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    try:
        wait_until_ready(process, ready_url, timeout=START_TIMEOUT)
    except ServerNotReadyError as exc:
        stop(process)  # its children too (LiteLLM's workers): it leads its own session
        raise RuntimeError(f"{command[:4]} {exc}; see {log}") from exc
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop `process` and every process of its session (uvicorn or LiteLLM workers)."""
    try:
        os.killpg(process.pid, 15)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
    except ProcessLookupError:
        pass  # the whole group is gone already


def litellm_binary(workdir: Path) -> Path:
    venv = workdir / "litellm-venv"
    binary = venv / "bin" / "litellm"
    if not binary.exists():
        print(f"installing LiteLLM proxy into {venv} (pip)...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([venv / "bin" / "pip", "install", "-q", "litellm[proxy]"], check=True)
    return binary


def litellm_version(workdir: Path) -> str:
    done = subprocess.run(
        [workdir / "litellm-venv" / "bin" / "pip", "show", "litellm"],
        capture_output=True,
        text=True,
    )
    found = re.search(r"Version: (\S+)", done.stdout)
    return found.group(1) if found else "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workdir", type=Path, default=Path("var/bench"))
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument("--skip-gateway", action="store_true")
    parser.add_argument("--fake-upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fake_upstream:
        run_fake_upstream(args.fake_upstream)
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian package wrk)")
    args.workdir.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    script = logs / "post.lua"
    script.write_text(wrk_script())
    data_dir = logs / "data"
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "demigod",
            "keys",
            "create",
            "--tenant",
            "bench",
            "--name",
            "gateway-bench",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "DEMIGOD_DATA_DIR": str(data_dir)},
    )
    authed_script = logs / "post-auth.lua"
    authed_script.write_text(wrk_script(json.loads(created.stdout)["key"]))
    lean = {"DEMIGOD_AUDIT__ENABLED": "false", "DEMIGOD_WAF__ENABLED": "false"}
    variants = {
        "gateway all on": ({}, authed_script),
        "gateway auth": (lean, authed_script),
        "gateway bare": ({"DEMIGOD_SECURITY__AUTH": "off", **lean}, script),
    }
    rows: list[Row] = []
    upstream_port = free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    upstream = start(
        [sys.executable, __file__, "--fake-upstream", str(upstream_port)],
        f"{upstream_url}/readyz",
        logs / "upstream.log",
    )
    print(f"{'target':<24} {'procs':>5} {'p50 ms c1':>10} {'p99 ms c1':>10} {'req/s':>10}")
    try:
        path = "/v1/chat/completions"
        rows.append(measure("upstream direct", 1, upstream_url + path, args, script))
        for name, (env, lua) in {} if args.skip_gateway else variants.items():
            for workers in (1, 2):
                port = free_port()
                gateway = start(
                    [
                        sys.executable,
                        "-m",
                        "demigod",
                        "gateway",
                        "--port",
                        str(port),
                        "--upstream",
                        f"{MODEL}={upstream_url}",
                        "--workers",
                        str(workers),
                    ],
                    f"http://127.0.0.1:{port}/readyz",
                    logs / f"gateway-{workers}.log",
                    env={"DEMIGOD_LOG_LEVEL": "WARNING", "DEMIGOD_DATA_DIR": str(data_dir), **env},
                )
                try:
                    url = f"http://127.0.0.1:{port}{path}"
                    rows.append(measure(name, workers, url, args, lua))
                finally:
                    stop(gateway)
        if not args.skip_litellm:
            binary = litellm_binary(args.workdir)
            config = logs / "litellm.yaml"
            config.write_text(
                f"model_list:\n  - model_name: {MODEL}\n    litellm_params:\n"
                f"      model: openai/{MODEL}\n      api_base: {upstream_url}/v1\n"
                "      api_key: fake\n"
                "litellm_settings:\n  telemetry: false\n"
                f"general_settings:\n  master_key: {LITELLM_MASTER_KEY}\n"
            )
            litellm_script = logs / "post-litellm.lua"
            litellm_script.write_text(wrk_script(LITELLM_MASTER_KEY))
            for workers in (1, 2):
                port = free_port()
                proxy = start(
                    [
                        str(binary),
                        "--config",
                        str(config),
                        "--port",
                        str(port),
                        "--host",
                        "127.0.0.1",
                        "--num_workers",
                        str(workers),
                    ],
                    f"http://127.0.0.1:{port}/health/liveliness",
                    logs / f"litellm-{workers}.log",
                    env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"},
                )
                try:
                    url = f"http://127.0.0.1:{port}{path}"
                    rows.append(measure("litellm proxy", workers, url, args, litellm_script))
                finally:
                    stop(proxy)
    finally:
        stop(upstream)
    summary: dict[str, object] = {
        "bench": "gateway_overhead",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}",
        "litellm": None if args.skip_litellm else litellm_version(args.workdir),
        "rows": [asdict(row) for row in rows],
    }
    direct = rows[0]
    litellms = {row.processes: row for row in rows if row.target == "litellm proxy"}
    if litellms:
        summary["litellm_added_p50_ms"] = round(litellms[1].p50_ms_1conn - direct.p50_ms_1conn, 3)
    for name in [] if args.skip_gateway else variants:
        gateways = {row.processes: row for row in rows if row.target == name}
        summary[name] = {
            "added_p50_ms": round(gateways[1].p50_ms_1conn - direct.p50_ms_1conn, 3),
            "rps_vs_litellm": {
                n: round(gateways[n].rps / litellms[n].rps, 1) for n in litellms if n in gateways
            },
        }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
