"""Soak: the mesh at half its measured capacity for a long time. Does memory grow, does
anything fail, does p95 drift?

Run: PYTHONPATH=src .venv/bin/python bench/soak.py --model FILE.gguf [--minutes 30]
A gateway (audit log, prompt screen and Redis-backed tenant quotas on, as in production)
in front of two `demigod worker` processes of one model. First the capacity: closed-loop
clients for `--capacity-seconds` (20) give the most completions per second; then
open-loop arrivals at `--load` (0.5) of it for `--minutes`. Per `--window` seconds:
requests, errors, p50/p95 and each process's resident memory. RSS growth is measured
from the end of the first window (imports, caches and allocator pools settle by then) to
the end.
Targets (issue 15): RSS growth <= 5 % per process, no error, p95 stable. Each window also
records the machine's 1-minute load average (latency on a shared machine follows it).
Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

import httpx
from traffic import BODY, Mesh, Traffic, percentile

from demigod.processes import free_port

CAPACITY_SECONDS = 20.0
CAPACITY_CLIENTS = 16
RSS_GROWTH_TARGET = 0.05
P95_DRIFT_LIMIT = 1.5  # the worst window's p95 against the median window's


def capacity(url: str, seconds: float) -> float:
    """Completions per second with CAPACITY_CLIENTS back-to-back clients."""
    done = 0
    stop = time.monotonic() + seconds

    def client() -> None:
        nonlocal done
        with httpx.Client(base_url=url, timeout=60) as http:
            while time.monotonic() < stop:
                if http.post("/v1/completions", json=BODY).status_code == 200:
                    done += 1

    threads = [threading.Thread(target=client) for _ in range(CAPACITY_CLIENTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done / (time.monotonic() - started)


def start_redis(work: Path) -> tuple[subprocess.Popen[bytes] | None, str | None]:
    server = shutil.which("redis-server")
    if server is None:
        return None, None
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(work)],
        stdout=(work / "redis.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    time.sleep(0.5)
    return process, f"redis://127.0.0.1:{port}/0"


def soak(
    model: Path, minutes: float, window: float, load: float, work: Path, capacity_seconds: float
) -> dict[str, Any]:
    redis, redis_url = start_redis(work)
    config: dict[str, Any] = {"audit": {"checkpoint_every_seconds": 30}}
    if redis_url:
        config["security"] = {
            "auth": "off",
            "redis_url": redis_url,
            "default_tenant": {"requests_per_minute": 10**7, "tokens_per_minute": 10**9},
        }
    mesh = Mesh(work, model, workers=2, config=config).start()
    try:
        max_rps = capacity(mesh.url, capacity_seconds)
        rate = load * max_rps
        traffic = Traffic(mesh.url, rate).start()
        windows: list[dict[str, Any]] = []
        started = time.time()
        end = started + minutes * 60
        while time.time() < end:
            window_start = time.time()
            time.sleep(min(window, max(0.0, end - time.time())))
            done = [o for o in list(traffic.outcomes) if window_start <= o.sent < time.time()]
            latencies = [o.seconds for o in done if o.status == 200]
            windows.append(
                {
                    "t": round(time.time() - started),
                    "requests": len(done),
                    "errors": sum(1 for o in done if o.status != 200),
                    "p50": round(percentile(latencies, 0.5), 3),
                    "p95": round(percentile(latencies, 0.95), 3),
                    "rss_mib": {k: round(v / 2**20, 1) for k, v in mesh.rss().items()},
                    "load_1m": round(os.getloadavg()[0], 2),  # the machine may be shared
                }
            )
            print(_row(windows[-1]), flush=True)
        outcomes = traffic.stop()
    finally:
        mesh.stop()
        if redis is not None:
            redis.terminate()
            redis.wait()
    first, last = windows[0]["rss_mib"], windows[-1]["rss_mib"]
    growth = {
        name: round((last[name] - first[name]) / first[name], 4) for name in first if name in last
    }
    p95s = [w["p95"] for w in windows]
    loads = [w["load_1m"] for w in windows]
    errors = [o for o in outcomes if o.status != 200]
    return {
        "bench": "soak",
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()} {platform.node()}",
        "minutes": minutes,
        "capacity_rps": round(max_rps, 2),
        "rate_rps": round(rate, 2),
        "requests": len(outcomes),
        "errors": len(errors),
        "error_codes": sorted({f"{o.status} {o.code}" for o in errors}),
        "p95_median_window": median(p95s),
        "p95_worst_window": max(p95s),
        "p95_drift": round(max(p95s) / median(p95s), 3) if median(p95s) else None,
        "rss_growth": growth,
        "rss_mib_first_window": first,
        "rss_mib_last_window": last,
        "load_average_1m": {"median": median(loads), "min": min(loads), "max": max(loads)},
        "redis": redis_url is not None,
        "met": {
            "rss_growth": all(g <= RSS_GROWTH_TARGET for g in growth.values()),
            "no_error": not errors,
            "p95_stable": bool(median(p95s)) and max(p95s) / median(p95s) <= P95_DRIFT_LIMIT,
        },
        "windows": windows,
    }


def _row(window: dict[str, Any]) -> str:
    rss = " ".join(f"{name}={mib:.0f}" for name, mib in sorted(window["rss_mib"].items()))
    return (
        f"{window['t']:>6}s {window['requests']:>6} req {window['errors']:>4} err "
        f"p50 {window['p50']:.3f}s p95 {window['p95']:.3f}s  RSS MiB {rss}  "
        f"load {window['load_1m']:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a GGUF file to serve")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--window", type=float, default=60.0, help="seconds per row")
    parser.add_argument("--load", type=float, default=0.5, help="share of measured capacity")
    parser.add_argument("--capacity-seconds", type=float, default=CAPACITY_SECONDS)
    parser.add_argument("--work-dir", type=Path, default=None, help="keep logs here")
    args = parser.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="demigod-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    result = soak(args.model, args.minutes, args.window, args.load, work, args.capacity_seconds)
    print(json.dumps(result))
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
