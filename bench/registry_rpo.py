"""How much of the SQLite registry a lost host takes with it: Litestream's continuous
replication against SQLite's online backup API on a timer, measured in the same run.

Run: PYTHONPATH=src .venv/bin/python bench/registry_rpo.py [--trials 3] [--seconds 12]
Each trial writes registry events (one transaction each, ~20/s, as lifecycle jobs and
canary decisions do, but faster) while one method copies the database to a directory;
at a random moment the copier is killed and the database deleted, then the copy is
restored. RPO = age, at the loss, of the oldest acknowledged event the restore lacks.
Also reported: bytes written to the destination per minute of writing (what the method
costs to store or upload). Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median

from timing import percentile

from demigod.config import BackupConfig
from demigod.ops.backup_target import DirectoryTarget
from demigod.ops.sqlite_replication import LitestreamReplicator, restore_sqlite
from demigod.ops.sqlite_snapshots import restore_snapshot, snapshot_sqlite
from demigod.registry import Registry

WRITE_PAUSE_SECONDS = 0.05
LITESTREAM_SYNC_SECONDS = 1.0
TIMER_PERIODS = (1.0, 10.0, 60.0)


class Copier:
    """One method: start() copying `db` to `target`, kill() as a lost host would."""

    def __init__(self, start: Callable[[], None], kill: Callable[[], None]) -> None:
        self.start, self.kill = start, kill


def litestream(db: Path, target: DirectoryTarget, work: Path) -> Copier:
    backup = BackupConfig(interval_seconds=LITESTREAM_SYNC_SECONDS)
    replicator = LitestreamReplicator(db, target, backup, work / "litestream.log")

    def kill() -> None:
        assert replicator.process is not None
        replicator.process.kill()
        replicator.process.wait()

    return Copier(replicator.start, kill)


def timer(db: Path, target: DirectoryTarget, period: float) -> Copier:
    stop = threading.Event()
    finished: list[tuple[str, float]] = []

    def loop() -> None:
        while not stop.wait(period):
            key = snapshot_sqlite(db, target, datetime.now(UTC), timedelta(days=1))
            finished.append((key, time.time()))

    def kill() -> None:
        killed = time.time()
        stop.set()
        thread.join()
        for key, at in finished:  # a copy that completed after the loss never happened
            if at > killed:
                target.delete(key)

    thread = threading.Thread(target=loop, daemon=True)
    return Copier(thread.start, kill)


def trial(method: str, period: float, seconds: float) -> tuple[float, float, int]:
    """(RPO seconds, destination bytes per minute, events written) of one trial."""
    work = Path(tempfile.mkdtemp(prefix="registry-rpo-"))
    try:
        db = work / "primary" / "registry.db"
        target = DirectoryTarget(work / "backup")
        acked: dict[int, float] = {}
        with Registry(f"sqlite:///{db}") as registry:
            copier = (
                litestream(db, target, work)
                if method == "litestream"
                else timer(db, target, period)
            )
            copier.start()
            lose_at = time.monotonic() + random.uniform(0.6, 1.0) * seconds
            n = 0
            while time.monotonic() < lose_at:
                registry.record_event("m", "bench.write", details={"n": n})
                acked[n] = time.time()
                n += 1
                time.sleep(WRITE_PAUSE_SECONDS)
            lost_at = time.time()
            copier.kill()
        written_bytes = sum(p.stat().st_size for p in (work / "backup").rglob("*") if p.is_file())
        shutil.rmtree(db.parent)
        restored = work / "restored" / "registry.db"
        if method == "litestream":
            restore_sqlite(target, BackupConfig(interval_seconds=LITESTREAM_SYNC_SECONDS), restored)
        else:
            restore_snapshot(target, restored, None)
        with Registry(f"sqlite:///{restored}", migrate=False) as registry:
            kept = {int(e.details["n"]) for e in registry.events("m", limit=10**6)}
        lost = [acked[k] for k in acked if k not in kept]
        rpo = lost_at - min(lost) if lost else 0.0
        minutes = (lost_at - min(acked.values())) / 60
        return rpo, written_bytes / minutes, len(acked)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=12.0, help="writing per trial, at least")
    args = parser.parse_args()
    methods = [("litestream", LITESTREAM_SYNC_SECONDS)] + [
        ("backup-api timer", p) for p in TIMER_PERIODS
    ]
    rows = []
    print(f"{'method':<18} {'period':>7} {'RPO median':>11} {'RPO max':>8} {'KiB/min':>9}")
    for method, period in methods:
        # A timer needs a few periods of writing to be judged fairly.
        seconds = max(args.seconds, 2.5 * period)
        results = [trial(method, period, seconds) for _ in range(args.trials)]
        rpos = [r[0] for r in results]
        row = {
            "method": method,
            "period_seconds": period,
            "rpo_median_seconds": round(median(rpos), 2),
            "rpo_max_seconds": round(max(rpos), 2),
            "rpo_p95_seconds": round(percentile(rpos, 0.95), 2),
            "kib_per_minute": round(median(r[1] for r in results) / 1024, 1),
            "events": sum(r[2] for r in results),
        }
        rows.append(row)
        print(
            f"{method:<18} {period:>6g}s {row['rpo_median_seconds']:>10.2f}s "
            f"{row['rpo_max_seconds']:>7.2f}s {row['kib_per_minute']:>9.1f}"
        )
    print(
        json.dumps(
            {
                "bench": "registry_rpo",
                "date": datetime.now(UTC).date().isoformat(),
                "machine": f"{platform.machine()} {platform.node()}",
                "trials": args.trials,
                "rows": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
