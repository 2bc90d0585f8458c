"""Audit log append latency and throughput with group commit, against one fsync per
record (the naive durable log), measured in the same run on the same disk.

Run: PYTHONPATH=src .venv/bin/python bench/audit_log.py [--dir DIR]
Each of C concurrent asyncio tasks appends records of a realistic request size and
awaits each (as the gateway does before answering). Prints a table and one JSON line.
DIR must be on the disk the log will use (default: a temporary folder under var/).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from timing import percentile

from demigod.security.audit.signing import SigningKey
from demigod.security.audit.store import AuditLog

RECORDS = 2000
CONCURRENCY = (1, 8, 64)
RECORD = {
    "request_id": "0" * 32,
    "method": "POST",
    "path": "/v1/chat/completions",
    "status": 200,
    "subject": "svc-ci",
    "tenant": "acme",
    "model": "demigod-chat",
    "version": "v3",
    "verdicts": {"auth": "api_key", "quota": "admitted", "screen": "allow"},
    "request_sha256": "f" * 64,
    "request_bytes": 1834,
    "received": "2026-11-26T13:00:00.000000Z",
    "decided": "2026-11-26T13:00:00.004000Z",
}


async def run(log: AuditLog, concurrency: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    per_task = RECORDS // concurrency

    async def task() -> None:
        for _ in range(per_task):
            start = time.perf_counter()
            await log.append("request", RECORD)
            latencies.append((time.perf_counter() - start) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(task() for _ in range(concurrency)))
    return latencies, time.perf_counter() - start


def measure(folder: Path, key: SigningKey, concurrency: int, group: int) -> dict[str, object]:
    chain = folder / f"c{concurrency}-g{group}"
    log = AuditLog(chain, key=key, max_group_records=group).open()
    latencies, seconds = asyncio.run(run(log, concurrency))
    fsyncs = log.fsyncs
    log.close()
    shutil.rmtree(chain)
    return {
        "concurrency": concurrency,
        "max_group_records": group,
        "records_per_second": round(len(latencies) / seconds),
        "p50_ms": round(percentile(latencies, 0.5), 3),
        "p95_ms": round(percentile(latencies, 0.95), 3),
        "p99_ms": round(percentile(latencies, 0.99), 3),
        "records_per_fsync": round(len(latencies) / max(fsyncs, 1), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("var"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="bench-audit-", dir=args.dir))
    key = SigningKey.load_or_create(folder / "key.pem")
    rows = []
    try:
        for concurrency in CONCURRENCY:
            for group in (256, 1):  # group commit, then the naive one-fsync-per-record log
                rows.append(measure(folder, key, concurrency, group))
    finally:
        shutil.rmtree(folder)
    print(
        f"{'tasks':>5} {'group':>5} {'rec/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
        f"{'rec/fsync':>9}"
    )
    for r in rows:
        print(
            f"{r['concurrency']:>5} {r['max_group_records']:>5} {r['records_per_second']:>7} "
            f"{r['p50_ms']:>7} {r['p95_ms']:>7} {r['p99_ms']:>7} {r['records_per_fsync']:>9}"
        )
    print(
        json.dumps(
            {
                "bench": "audit_log",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": platform.platform(),
                "cpus": os.cpu_count(),
                "load_average": os.getloadavg(),
                "dir": str(args.dir),
                "records": RECORDS,
                "rows": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
