"""Group commit: a record is fsynced before `append` returns; a crash loses only records
whose callers were still waiting; the torn tail is repaired and the chain verifies."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from demigod.security.audit.signing import SigningKey
from demigod.security.audit.store import AuditLog
from demigod.security.audit.verify import verify_chain


def test_append_returns_only_after_its_group_is_fsynced(
    tmp_path: Path, signing_key: SigningKey
) -> None:
    synced = {"seq": -1, "calls": 0}
    chain = tmp_path / "chain"

    def slow_fsync(fd: int) -> None:
        time.sleep(0.01)  # a slow disk: callers pile up into groups
        os.fsync(fd)
        if os.fstat(fd).st_size and any(chain.glob("records-*.jsonl")):
            (segment,) = chain.glob("records-*.jsonl")
            last = segment.read_bytes().splitlines()[-1]
            synced["seq"] = json.loads(last)["seq"]
        synced["calls"] += 1

    log = AuditLog(chain, key=signing_key, max_group_records=16, fsync=slow_fsync).open()

    async def one(i: int) -> None:
        record = await log.append("request", {"i": i})
        assert record.seq <= synced["seq"], "append returned before its fsync"

    async def main() -> None:
        await asyncio.gather(*(one(i) for i in range(200)))

    asyncio.run(main())
    groups = log.fsyncs
    log.close()
    assert 200 / 16 <= groups < 200  # grouped, and never more than 16 records per fsync
    assert verify_chain(chain).ok


CRASHER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from demigod.security.audit.signing import SigningKey
    from demigod.security.audit.store import AuditLog
    key = SigningKey.load_or_create(Path(sys.argv[2]))
    log = AuditLog(Path(sys.argv[1]), key=key, checkpoint_every_records=25).open()
    i = 0
    while True:
        futures = [log.submit("request", {"i": i + n, "pad": "x" * 300}) for n in range(7)]
        for future in futures:
            print("ack", future.result().seq, flush=True)
        i += 7
    """
)


def test_a_killed_writer_loses_no_acknowledged_record(
    tmp_path: Path, signing_key: SigningKey
) -> None:
    chain = tmp_path / "chain"
    key_file = tmp_path / "keys" / "audit.pem"
    writer = subprocess.Popen(
        [sys.executable, "-c", CRASHER, str(chain), str(key_file)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    acknowledged = -1
    for line in writer.stdout:
        acknowledged = int(line.split()[1])
        if acknowledged >= 300:
            break
    writer.send_signal(signal.SIGKILL)  # mid-stream: no close, no final checkpoint
    writer.wait()
    reopened = AuditLog(chain, key=SigningKey.load(key_file)).open()  # repairs a torn tail
    assert reopened.durable_seq >= acknowledged
    reopened.close()  # seals the recovered tail
    report = verify_chain(chain)
    assert report.ok, report.to_dict()
    assert report.last_seq is not None and report.last_seq >= acknowledged
    assert report.sealed_through == report.last_seq


def test_an_idle_log_is_sealed_after_checkpoint_every_seconds(
    tmp_path: Path, signing_key: SigningKey
) -> None:
    log = AuditLog(tmp_path / "chain", key=signing_key, checkpoint_every_seconds=0.2).open()
    log.submit("request", {"i": 1}).result()
    deadline = time.monotonic() + 5
    while log.last_checkpoint is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.last_checkpoint is not None and log.last_checkpoint.last_seq == 0
    log.close()
