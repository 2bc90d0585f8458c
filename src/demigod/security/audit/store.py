"""The audit log writer: append records durably, seal them into checkpoints, rotate, prune.

Durability (group commit): `append` hands the record to one writer thread and waits.
The writer takes everything queued (at most `max_group_records`), chains it, writes it with
one `write` and one `fsync`, and only then resolves each waiter. So a caller that got its
record back, and so every response the gateway sent, is on disk; what a crash can lose is
only records whose callers are still waiting (at most one group being written, plus the
queue), and their responses were never sent. The event loop never blocks: it only awaits.

Checkpoints are made by a second thread, so a slow TSA never delays a request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import itertools
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes

from demigod.config import AuditConfig, Settings
from demigod.security.audit.checkpoints import Checkpoint, CheckpointFormatError, make_checkpoint
from demigod.security.audit.layout import (
    CHECKPOINTS_FILE,
    LOCK_FILE,
    PUBLIC_KEYS_DIR,
    TSA_CERTS_DIR,
    fsync_directory,
    list_segments,
    segment_name,
)
from demigod.security.audit.records import (
    GENESIS_HASH,
    AuditRecord,
    RecordFormatError,
    chain_record,
    parse_time,
    utc_now,
)
from demigod.security.audit.signing import SigningKey, public_key_pem
from demigod.security.audit.timestamping import (
    TimestampClient,
    certificate_pem,
    load_certificates,
    token_certificates,
)

log = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 5.0
DEFAULT_KEY_FILE = "audit-signing-key.pem"


class AuditLogUnavailableError(RuntimeError):
    """The record could not be made durable (disk error, log closed, folder locked)."""


@dataclass
class _Append:
    kind: str
    data: dict[str, Any]
    future: concurrent.futures.Future[AuditRecord] = field(
        default_factory=concurrent.futures.Future
    )


@dataclass
class _Seal:
    """Checkpoint whatever is unsealed now; resolved once the checkpoint is on disk."""

    future: concurrent.futures.Future[Checkpoint | None] = field(
        default_factory=concurrent.futures.Future
    )


class _Stop:
    pass


@dataclass
class _SealJob:
    first_seq: int
    hashes: list[str]
    waiters: list[concurrent.futures.Future[Checkpoint | None]]


def default_node(settings: Settings) -> str:
    """`<hostname>-<port>`: one chain per gateway process, stable across restarts."""
    host = "".join(c if c.isalnum() or c in "-." else "-" for c in socket.gethostname())
    return f"{host or 'node'}-{settings.port}"


def audit_root(settings: Settings) -> Path:
    return settings.audit.dir or settings.data_dir / "audit"


def signing_key_path(settings: Settings) -> Path:
    return settings.audit.signing_key_path or settings.data_dir / DEFAULT_KEY_FILE


class AuditLog:
    """One hash chain in `directory`. `open()` before use, `close()` to seal and stop."""

    def __init__(
        self,
        directory: Path,
        *,
        key: SigningKey,
        timestamper: TimestampClient | None = None,
        checkpoint_every_records: int = 1000,
        checkpoint_every_seconds: float = 300.0,
        rotate_bytes: int = 64 * 1024 * 1024,
        retention_days: int = 183,
        max_group_records: int = 256,
        fsync: Callable[[int], None] = os.fsync,
    ) -> None:
        self.directory = directory
        self.key = key
        self.timestamper = timestamper
        self.checkpoint_every_records = checkpoint_every_records
        self.checkpoint_every_seconds = checkpoint_every_seconds
        self.rotate_bytes = rotate_bytes
        self.retention_days = retention_days
        self.max_group_records = max_group_records
        self._fsync = fsync
        self._queue: queue.Queue[_Append | _Seal | _Stop] = queue.Queue()
        self._seal_queue: queue.Queue[_SealJob | None] = queue.Queue()
        self._next_seq = 0
        self._last_hash = GENESIS_HASH
        self._durable_seq = -1
        self._fd: int | None = None
        self._segment_day: str | None = None
        self._segment_size = 0
        self._unsealed: list[str] = []
        self._unsealed_first = 0
        self._unsealed_since = 0.0
        self._last_checkpoint: Checkpoint | None = None
        self._lock_fd: int | None = None
        self._threads: list[threading.Thread] = []
        self._closed = True
        self.fsyncs = 0  # group commits done (tests and metrics read it)

    @classmethod
    def from_settings(cls, settings: Settings, node: str | None = None) -> AuditLog:
        """The chain of `node` (default: audit.node, else <hostname>-<port>)."""
        config: AuditConfig = settings.audit
        trusted = (
            load_certificates(config.tsa_cert_path.read_bytes()) if config.tsa_cert_path else []
        )
        timestamper = (
            TimestampClient(config.tsa_url, trusted=trusted, timeout=config.tsa_timeout_seconds)
            if config.tsa_url
            else None
        )
        return cls(
            audit_root(settings) / (node or config.node or default_node(settings)),
            key=SigningKey.load_or_create(signing_key_path(settings)),
            timestamper=timestamper,
            checkpoint_every_records=config.checkpoint_every_records,
            checkpoint_every_seconds=config.checkpoint_every_seconds,
            rotate_bytes=config.rotate_bytes,
            retention_days=config.retention_days,
            max_group_records=config.max_group_records,
        )

    # --- the API -------------------------------------------------------------------------

    @property
    def durable_seq(self) -> int:
        """The highest seq known to be fsynced (-1: none yet)."""
        return self._durable_seq

    @property
    def last_checkpoint(self) -> Checkpoint | None:
        return self._last_checkpoint

    def submit(self, kind: str, data: dict[str, Any]) -> concurrent.futures.Future[AuditRecord]:
        """Queue a record; the future resolves once it is fsynced. Never blocks."""
        item = _Append(kind, data)
        if self._closed:
            item.future.set_exception(AuditLogUnavailableError("the audit log is closed"))
        else:
            self._queue.put(item)
        return item.future

    async def append(self, kind: str, data: dict[str, Any]) -> AuditRecord:
        """Append and wait until durable. Raises AuditLogUnavailableError, ValueError."""
        return await asyncio.wrap_future(self.submit(kind, data))

    def record_event(
        self, kind: str, data: dict[str, Any]
    ) -> concurrent.futures.Future[AuditRecord]:
        """Append from synchronous code (lifecycle hooks, CLIs) without waiting; failures
        are logged. `.result()` on the returned future waits for durability."""
        future = self.submit(kind, data)
        future.add_done_callback(_log_failure)
        return future

    def seal(self, timeout: float | None = 30.0) -> Checkpoint | None:
        """Checkpoint the unsealed records now and wait for it (None: nothing to seal)."""
        request = _Seal()
        self._queue.put(request)
        return request.future.result(timeout)

    def open(self) -> AuditLog:
        """Lock the folder, recover the tail after a crash, start the writer threads.
        Raises AuditLogUnavailableError when another process holds the folder."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock()
        keys = self.directory / PUBLIC_KEYS_DIR
        keys.mkdir(exist_ok=True)
        key_file = keys / f"{self.key.key_id}.pem"
        if not key_file.exists():
            key_file.write_bytes(public_key_pem(self.key.public_key))
        self._recover()
        self._closed = False
        for target, name in ((self._write_loop, "audit-writer"), (self._seal_loop, "audit-seal")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self._prune()
        return self

    def close(self) -> None:
        """Write what is queued, checkpoint it, stop the threads, unlock."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_Stop())
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.timestamper is not None:
            self.timestamper.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # --- opening -------------------------------------------------------------------------

    def _lock(self) -> None:
        fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise AuditLogUnavailableError(
                        f"audit chain {self.directory} is in use by another process; give "
                        "each gateway process its own audit.node"
                    ) from None
                time.sleep(0.05)
        self._lock_fd = fd

    def _recover(self) -> None:
        checkpoints = self.directory / CHECKPOINTS_FILE
        for line in _complete_lines(checkpoints, repair=True):
            try:
                self._last_checkpoint = Checkpoint.from_line(line)
            except CheckpointFormatError:
                log.error("audit: unreadable checkpoint line in %s", checkpoints)
        sealed_through = self._last_checkpoint.last_seq if self._last_checkpoint else -1
        segments = list_segments(self.directory)
        last: AuditRecord | None = None
        for index, (_, path) in enumerate(segments):
            is_last = index == len(segments) - 1
            if not is_last and segments[index + 1][0] <= sealed_through + 1:
                continue  # fully sealed and not the tail: nothing to read
            for line in _complete_lines(path, repair=is_last):
                try:
                    record = AuditRecord.from_line(line)
                except RecordFormatError:
                    log.error("audit: unreadable record in %s (verify will name it)", path)
                    continue
                last = record
                if record.seq > sealed_through:
                    if not self._unsealed:
                        self._unsealed_first = record.seq
                    self._unsealed.append(record.hash)
        if last is not None:
            self._next_seq, self._last_hash = last.seq + 1, last.hash
        elif self._last_checkpoint is not None:
            self._next_seq = self._last_checkpoint.last_seq + 1
            self._last_hash = self._last_checkpoint.last_record_hash
        self._durable_seq = self._next_seq - 1
        if sealed_through >= self._next_seq:
            log.error(
                "audit: checkpoint covers up to seq %d but the records end at %d: records "
                "are missing (run `demigod audit verify`)",
                sealed_through,
                self._next_seq - 1,
            )
        self._unsealed_since = time.monotonic()
        if segments:
            path = segments[-1][1]
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            self._segment_size = path.stat().st_size
            self._segment_day = _utc_day(datetime.fromtimestamp(path.stat().st_mtime, UTC))

    # --- the writer thread ---------------------------------------------------------------

    def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            timeout = None
            if self._unsealed:
                due = self._unsealed_since + self.checkpoint_every_seconds
                timeout = max(0.0, due - time.monotonic())
            try:
                first = self._queue.get(timeout=timeout)
            except queue.Empty:
                self._start_seal([])
                continue
            group: list[_Append] = []
            seals: list[_Seal] = []
            item: _Append | _Seal | _Stop | None = first
            while item is not None:
                if isinstance(item, _Append):
                    group.append(item)
                elif isinstance(item, _Seal):
                    seals.append(item)
                else:
                    stopping = True
                if len(group) >= self.max_group_records:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    item = None
            if group:
                self._write_group(group)
            if seals or stopping or len(self._unsealed) >= self.checkpoint_every_records:
                self._start_seal([seal.future for seal in seals])
        # Anything queued after the stop is refused rather than lost silently.
        while True:
            try:
                late = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(late, _Append | _Seal):
                late.future.set_exception(AuditLogUnavailableError("the audit log is closed"))
        self._seal_queue.put(None)

    def _write_group(self, group: list[_Append]) -> None:
        now = datetime.now(UTC)
        self._rotate_if_needed(now)
        assert self._fd is not None
        stamp = utc_now()
        seq, prev = self._next_seq, self._last_hash
        written: list[tuple[_Append, AuditRecord]] = []
        for item in group:
            try:
                record = chain_record(seq, prev, item.kind, item.data, stamp)
            except ValueError as exc:
                item.future.set_exception(exc)
                continue
            written.append((item, record))
            seq, prev = seq + 1, record.hash
        if not written:
            return
        payload = b"".join(record.to_line() for _, record in written)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(self._fd, view) :]
            self._fsync(self._fd)
        except OSError as exc:
            log.error("audit write failed, %d record(s) refused: %s", len(written), exc)
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._segment_size)  # drop a partial group
            error = AuditLogUnavailableError(f"audit log write failed: {exc}")
            for item, _ in written:
                item.future.set_exception(error)
            return
        self.fsyncs += 1
        self._segment_size += len(payload)
        if not self._unsealed:
            self._unsealed_first = self._next_seq
            self._unsealed_since = time.monotonic()
        self._unsealed.extend(record.hash for _, record in written)
        self._next_seq, self._last_hash = seq, prev
        self._durable_seq = seq - 1
        for item, record in written:
            item.future.set_result(record)

    def _rotate_if_needed(self, now: datetime) -> None:
        day = _utc_day(now)
        if (
            self._fd is not None
            and self._segment_size < self.rotate_bytes
            and (self._segment_day == day or self._segment_size == 0)
        ):
            self._segment_day = day
            return
        # Seal first, so every segment starts at a checkpoint boundary: a pruned segment
        # then leaves a signed checkpoint that anchors the next one.
        self._start_seal([])
        if self._fd is not None:
            os.close(self._fd)
        path = self.directory / segment_name(self._next_seq)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        fsync_directory(self.directory)
        self._segment_size = path.stat().st_size
        self._segment_day = day
        if self._fd is not None and len(list_segments(self.directory)) > 1:
            self._prune()

    def _start_seal(self, waiters: list[concurrent.futures.Future[Checkpoint | None]]) -> None:
        self._seal_queue.put(_SealJob(self._unsealed_first, self._unsealed, waiters))
        self._unsealed = []

    # --- the checkpoint thread -----------------------------------------------------------

    def _seal_loop(self) -> None:
        while (job := self._seal_queue.get()) is not None:
            checkpoint: Checkpoint | None = None
            try:
                if job.hashes:
                    checkpoint = self._write_checkpoint(job)
            except Exception as exc:  # a lost checkpoint must be loud, not fatal
                log.exception("audit checkpoint failed")
                for waiter in job.waiters:
                    waiter.set_exception(AuditLogUnavailableError(f"checkpoint failed: {exc}"))
                continue
            for waiter in job.waiters:
                waiter.set_result(checkpoint)

    def _write_checkpoint(self, job: _SealJob) -> Checkpoint:
        previous = self._last_checkpoint
        checkpoint = make_checkpoint(
            index=0 if previous is None else previous.index + 1,
            first_seq=job.first_seq,
            record_hashes=job.hashes,
            prev_checkpoint=previous,
            time=utc_now(),
            key=self.key,
            timestamper=self.timestamper,
        )
        path = self.directory / CHECKPOINTS_FILE
        created = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, checkpoint.to_line())
            self._fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_directory(self.directory)
        self._last_checkpoint = checkpoint
        if (token := checkpoint.token_bytes()) is not None:
            self._keep_tsa_certificates(token)
        log.info(
            "audit checkpoint %d sealed records %d..%d",
            checkpoint.index,
            checkpoint.first_seq,
            checkpoint.last_seq,
            extra={"timestamped": checkpoint.timestamp_token is not None},
        )
        return checkpoint

    def _keep_tsa_certificates(self, token: bytes) -> None:
        folder = self.directory / TSA_CERTS_DIR
        folder.mkdir(exist_ok=True)
        for certificate in token_certificates(token):
            target = folder / f"{certificate.fingerprint(hashes.SHA256()).hex()[:32]}.pem"
            if not target.exists():
                target.write_bytes(certificate_pem(certificate))

    # --- retention -----------------------------------------------------------------------

    def _prune(self) -> None:
        """Delete whole segments whose newest record is older than the retention period
        and that a checkpoint has sealed; never the segment being written."""
        cutoff = datetime.now(UTC) - timedelta(days=self.retention_days)
        sealed_through = self._last_checkpoint.last_seq if self._last_checkpoint else -1
        segments = list_segments(self.directory)
        removed: list[str] = []
        for (_, path), (next_first, _) in itertools.pairwise(segments):
            if next_first - 1 > sealed_through:
                break
            newest = _last_record_time(path)
            if newest is None or newest >= cutoff:
                break
            path.unlink()
            removed.append(path.name)
        if removed:
            fsync_directory(self.directory)
            log.warning("audit retention removed %d segment(s)", len(removed))
            self.record_event(
                "audit.retention",
                {"removed_segments": removed, "retention_days": self.retention_days},
            )


def _log_failure(future: concurrent.futures.Future[AuditRecord]) -> None:
    if (error := future.exception()) is not None:
        log.error("audit event not recorded: %s", error)


def _utc_day(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def _complete_lines(path: Path, *, repair: bool) -> list[bytes]:
    """The newline-terminated lines of `path`. With `repair`, a torn last line (a crash
    mid-write: its caller was never answered) is cut off, loudly."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    end = data.rfind(b"\n") + 1
    if end < len(data) and repair:
        log.error("audit: removing a torn %d-byte tail from %s", len(data) - end, path)
        with open(path, "r+b") as handle:
            handle.truncate(end)
            handle.flush()
            os.fsync(handle.fileno())
    return [line for line in data[:end].split(b"\n") if line]


def _last_record_time(path: Path) -> datetime | None:
    line = _last_complete_line(path)
    if line is None:
        return None
    try:
        return parse_time(AuditRecord.from_line(line).time)
    except (RecordFormatError, ValueError):
        return None


def _last_complete_line(path: Path, block: int = 64 * 1024) -> bytes | None:
    """The last newline-terminated line of `path` (without its newline), read from the
    file's end. Pruning asks this of old segments at each rotation: reading a whole 64 MiB
    segment for it grew the gateway's memory by the segment's size (docs/benchmarks.md,
    the 30-minute soak)."""
    try:
        with open(path, "rb") as handle:
            end = position = handle.seek(0, os.SEEK_END)
            while position > 0:
                position = max(0, position - block)
                handle.seek(position)
                tail = handle.read(end - position)
                last_newline = tail.rfind(b"\n")
                if last_newline < 0:
                    continue  # only a torn tail so far: read further back
                start = tail.rfind(b"\n", 0, last_newline) + 1
                if start > 0 or position == 0:
                    return tail[start:last_newline]
    except FileNotFoundError:
        pass
    return None
