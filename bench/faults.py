"""Faults under traffic: Redis restarted, PostgreSQL restarted, a worker's network cut.

Run: PYTHONPATH=src .venv/bin/python bench/faults.py --model FILE.gguf [--scenario all]
A gateway (audit log on) in front of two `demigod worker` processes, with completions
arriving at `--rate` per second throughout.

- redis: tenant quotas live in Redis; it is killed, left down `--outage` seconds and
  started again on the same port. Every answer must be a 200 or a clear 503
  `quota_unavailable`, answers must be 200 again once Redis is back (the counters
  resume), and every answered request must have its audit record.
- postgres: the model registry on PostgreSQL is written to (lifecycle events) while the
  server is stopped and started again; serving must not notice, registry writes must
  fail cleanly during the outage and succeed after it, no audit record lost.
- netcut: one worker runs in its own network namespace behind a veth pair; mid-traffic
  the link goes down on the worker's side, so nothing it sends or is sent arrives
  (connections hang, they are not refused). Reported: when the gateway marked the
  replica down (a health check timed out; from then on no request goes there: the
  failover), the worst latency of requests sent between the cut and that moment (those
  caught on the cut replica are retried on the other when it is marked down), the p99
  of those sent after it, and failures. Needs root and `ip` (iproute2). The gateway
  checks health every 0.5 s with a 0.5 s timeout (connect timeout 0.5 s, request
  timeout 10 s).

`--repeat N` runs each scenario N times; then a table of the medians and a summary JSON
line. Every run reports its wall time and the machine's 1-minute load average at its end
(the machine may be shared). Prints one JSON line per run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

import httpx
from soak import start_redis
from sqlalchemy.exc import SQLAlchemyError
from traffic import Mesh, Outcome, Traffic, percentile

from demigod.ops.postgres_cluster import PostgresCluster
from demigod.registry import Registry
from demigod.security.audit.layout import find_chains, list_segments
from demigod.security.audit.records import AuditRecord

SETTLE_SECONDS = 5.0  # traffic before and after each fault (--settle)


def audit_gaps(mesh: Mesh, outcomes: list[Outcome]) -> dict[str, int]:
    """Answered requests without a record in the gateway's audit chain, or with another
    status in it."""
    recorded: dict[str, int] = {}
    port = mesh.url.rsplit(":", 1)[1]
    for chain in find_chains(mesh.work / "data" / "audit"):
        if not chain.name.endswith(f"-{port}"):
            continue  # a worker's chain
        for _, segment in list_segments(chain):
            for line in segment.read_bytes().splitlines():
                record = AuditRecord.from_line(line)
                if record.kind == "request":
                    recorded[str(record.data.get("request_id"))] = int(record.data["status"])
    answered = [o for o in outcomes if o.status]
    return {
        "answered": len(answered),
        "missing": sum(1 for o in answered if o.request_id not in recorded),
        "status_differs": sum(
            1 for o in answered if o.request_id in recorded and recorded[o.request_id] != o.status
        ),
    }


def _codes(outcomes: list[Outcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for o in outcomes:
        key = "200" if o.status == 200 else f"{o.status} {o.code}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def redis_restart(
    model: Path, work: Path, rate: float, outage: float, settle: float
) -> dict[str, Any]:
    redis, url = start_redis(work)
    if redis is None or url is None:
        return {"scenario": "redis", "skipped": "redis-server is not installed"}
    port = url.rsplit(":", 1)[1].split("/")[0]
    config = {
        "security": {
            "auth": "off",
            "redis_url": url,
            "default_tenant": {"requests_per_minute": 10**7},
        }
    }
    mesh = Mesh(work, model, config=config).start()
    try:
        traffic = Traffic(mesh.url, rate).start()
        time.sleep(settle)
        down_at = time.time()
        redis.kill()
        redis.wait()
        time.sleep(outage)
        redis = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ],
            stdout=(work / "redis-2.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        up_at = time.time()
        time.sleep(settle)
        outcomes = traffic.stop()
        counted = _redis_counters(url)
    finally:
        mesh.stop()
        redis.terminate()
        redis.wait()
    during = [o for o in outcomes if down_at <= o.sent < up_at]
    after = [o for o in outcomes if o.sent >= up_at]
    failing_after = [o.sent for o in after if o.status != 200]
    return {
        "scenario": "redis",
        "outage_seconds": outage,
        "before": _codes([o for o in outcomes if o.sent < down_at]),
        "during": _codes(during),
        "after": _codes(after),
        "unclear_errors": sum(
            1
            for o in outcomes
            if o.status not in (200, 503) or (o.status == 503 and o.code != "quota_unavailable")
        ),
        "recovered_seconds_after_restart": round(max(failing_after) - up_at, 3)
        if failing_after
        else 0.0,
        "quota_counters_after_restart": counted,
        "audit": audit_gaps(mesh, outcomes),
    }


def _redis_counters(url: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return sum(
            int(client.get(key) or 0) for key in client.scan_iter("demigod:quota:*:requests:*")
        )
    finally:
        client.close()


def postgres_restart(
    model: Path, work: Path, rate: float, outage: float, settle: float
) -> dict[str, Any]:
    cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="demigod-faults-pg-")))
    cluster.init()
    cluster.start()
    url = cluster.create_database("registry")
    mesh = Mesh(work, model, config={"database_url": url}).start()
    writes: list[tuple[float, bool]] = []
    stop = threading.Event()

    def writer() -> None:
        with Registry(url, actor="faults") as registry:
            n = 0
            while not stop.is_set():
                try:
                    registry.record_event("tiny", "faults.write", details={"n": n})
                    writes.append((time.time(), True))
                except SQLAlchemyError:  # the outage: counted, then retried
                    writes.append((time.time(), False))
                n += 1
                stop.wait(0.2)

    thread = threading.Thread(target=writer, daemon=True)
    try:
        traffic = Traffic(mesh.url, rate).start()
        thread.start()
        time.sleep(settle)
        down_at = time.time()
        cluster.stop()  # fast shutdown, as `pg_ctl restart` does
        stopped_at = time.time()
        time.sleep(outage)
        cluster.start()
        up_at = time.time()
        time.sleep(settle)
        outcomes = traffic.stop()
        stop.set()
        thread.join()
    finally:
        mesh.stop()
        cluster.remove()
    failed_after = [at for at, ok in writes if at >= up_at and not ok]
    return {
        "scenario": "postgres",
        "outage_seconds": outage,
        "stop_seconds": round(stopped_at - down_at, 3),
        "down_seconds": round(up_at - down_at, 3),
        "requests": _codes(outcomes),
        "failed_requests": sum(1 for o in outcomes if o.status != 200),
        "registry_writes": {
            "ok": sum(1 for _, ok in writes if ok),
            "failed_during_outage": sum(1 for at, ok in writes if down_at <= at and not ok),
            "failed_after_restart": len(failed_after),
            "ok_after_restart": sum(1 for at, ok in writes if at >= up_at and ok),
            "recovered_seconds_after_restart": round(max(failed_after) - up_at, 3)
            if failed_after
            else 0.0,
        },
        "audit": audit_gaps(mesh, outcomes),
    }


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def network_cut(model: Path, work: Path, rate: float, settle: float) -> dict[str, Any]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return {"scenario": "netcut", "skipped": "needs root and iproute2 (ip netns)"}
    tag = os.getpid() % 100000
    namespace, host_side, ns_side = f"dgcut{tag}", f"dgh{tag}", f"dgn{tag}"
    subnet = f"10.231.{tag % 250}"
    _ip("netns", "add", namespace)
    try:
        _ip("link", "add", host_side, "type", "veth", "peer", "name", ns_side)
        _ip("link", "set", ns_side, "netns", namespace)
        _ip("addr", "add", f"{subnet}.1/30", "dev", host_side)
        _ip("link", "set", host_side, "up")
        for command in (
            ("addr", "add", f"{subnet}.2/30", "dev", ns_side),
            ("link", "set", ns_side, "up"),
            ("link", "set", "lo", "up"),
        ):
            _ip("netns", "exec", namespace, "ip", *command)
        gateway = {
            "health_interval_seconds": 0.5,
            "health_timeout_seconds": 0.5,
            "connect_timeout_seconds": 0.5,
            "request_timeout_seconds": 10.0,
        }
        mesh = Mesh(
            work,
            model,
            config={"gateway": gateway},
            worker_hosts=[f"{subnet}.2", "127.0.0.1"],
            worker_prefix={0: ["ip", "netns", "exec", namespace]},
        ).start()
        try:
            # The worker's side of the link goes down: its packets vanish, as when a
            # cable or a switch port dies. (Downing the host's side instead removes the
            # route, and what answers then depends on this host's default route.)
            return _cut(
                mesh,
                rate,
                ["netns", "exec", namespace, "ip", "link", "set", ns_side, "down"],
                settle,
            )
        finally:
            mesh.stop()
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=False, capture_output=True)
        subprocess.run(["ip", "link", "del", host_side], check=False, capture_output=True)


def _cut(mesh: Mesh, rate: float, cut: list[str], settle: float) -> dict[str, Any]:
    dead = mesh.worker_urls[0]
    traffic = Traffic(mesh.url, rate, timeout=30).start()
    time.sleep(settle)
    baseline = [o.seconds for o in traffic.outcomes if o.status == 200]
    cut_at = time.time()
    _ip(*cut)
    detected_at = None
    while time.time() < cut_at + settle * 2:
        metrics = httpx.get(f"{mesh.url}/metrics", timeout=5).text
        up = f'demigod_upstream_up{{model="tiny",replica="{dead}"}} 0.0'
        if detected_at is None and up in metrics:
            detected_at = time.time()
        time.sleep(0.05)
    outcomes = traffic.stop()
    after = [o for o in outcomes if o.sent >= cut_at]
    detected = detected_at or time.time()
    # Sent before the gateway knew: those routed to the cut replica waited until it was
    # marked down, then were retried on the other.
    caught = [o for o in after if o.sent < detected]
    later = [o.seconds for o in after if o.sent >= detected]
    return {
        "scenario": "netcut",
        "detected_seconds": None if detected_at is None else round(detected_at - cut_at, 3),
        "baseline_p99_seconds": round(percentile(baseline, 0.99), 3),
        "p99_after_detection_seconds": round(percentile(later, 0.99), 3) if later else None,
        "worst_latency_caught_in_the_cut": round(max(o.seconds for o in caught), 3)
        if caught
        else None,
        "sent_before_detection": len(caught),
        "failed_after_cut": sum(1 for o in after if o.status != 200),
        "requests": _codes(outcomes),
    }


SCENARIOS: dict[str, Callable[[Path, Path, float, float, float], dict[str, Any]]] = {
    "redis": redis_restart,
    "postgres": postgres_restart,
    "netcut": lambda model, work, rate, _outage, settle: network_cut(model, work, rate, settle),
}

# The figures summarised over repeats: (scenario, label, path into the run's JSON).
SUMMARY: list[tuple[str, str, tuple[str, ...]]] = [
    ("redis", "503 quota_unavailable while Redis was down", ("during", "503 quota_unavailable")),
    ("redis", "other errors (any phase)", ("unclear_errors",)),
    ("redis", "s from Redis back to the last error", ("recovered_seconds_after_restart",)),
    ("redis", "answers without their audit record", ("audit", "missing")),
    ("postgres", "requests that failed", ("failed_requests",)),
    ("postgres", "registry writes failed, outage", ("registry_writes", "failed_during_outage")),
    ("postgres", "registry writes failed after it", ("registry_writes", "failed_after_restart")),
    ("postgres", "answers without their audit record", ("audit", "missing")),
    ("netcut", "s from the cut to the replica marked down", ("detected_seconds",)),
    ("netcut", "worst latency caught in the cut (s)", ("worst_latency_caught_in_the_cut",)),
    ("netcut", "p99 after detection (s)", ("p99_after_detection_seconds",)),
    ("netcut", "baseline p99 (s)", ("baseline_p99_seconds",)),
    ("netcut", "failed requests after the cut", ("failed_after_cut",)),
]  # fmt: skip


def _figure(result: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = result
    for key in path:
        value = value.get(key, 0) if isinstance(value, dict) else None
    return value if isinstance(value, (int, float)) else None


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median, min and max of each SUMMARY figure over the runs that were not skipped."""
    figures: dict[str, Any] = {}
    for scenario, label, path in SUMMARY:
        values = [
            v
            for run in runs
            if run["scenario"] == scenario and "skipped" not in run
            for v in [_figure(run, path)]
            if v is not None
        ]
        if values:
            figures[f"{scenario}: {label}"] = {
                "median": median(values),
                "min": min(values),
                "max": max(values),
                "runs": len(values),
            }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a GGUF file to serve")
    parser.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="all")
    parser.add_argument("--rate", type=float, default=8.0, help="completions per second")
    parser.add_argument(
        "--outage", type=float, default=3.0, help="seconds Redis/PostgreSQL is down"
    )
    parser.add_argument(
        "--settle", type=float, default=SETTLE_SECONDS, help="seconds of traffic before and after"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each scenario")
    args = parser.parse_args()
    scenarios = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    runs: list[dict[str, Any]] = []
    for _ in range(args.repeat):
        for scenario in scenarios:
            work = Path(tempfile.mkdtemp(prefix=f"demigod-faults-{scenario}-"))
            started = time.monotonic()
            try:
                result = SCENARIOS[scenario](args.model, work, args.rate, args.outage, args.settle)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            result["wall_seconds"] = round(time.monotonic() - started, 1)
            result["load_average_1m"] = round(os.getloadavg()[0], 2)
            runs.append(result)
            print(json.dumps(result), flush=True)
    figures = summarise(runs)
    for label, figure in figures.items():
        print(
            f"{label:<72} median {figure['median']:>8} (min {figure['min']}, max {figure['max']})"
        )
    loads = [run["load_average_1m"] for run in runs]
    summary = {
        "scenario": "summary",
        "date": datetime.now(UTC).date().isoformat(),
        "repeat": args.repeat,
        "rate": args.rate,
        "outage_seconds": args.outage,
        "load_average_1m": {"median": median(loads), "max": max(loads)},
        "figures": figures,
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
