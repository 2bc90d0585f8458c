"""Recurrent-state cache: a sequence's state saved under the exact tokens that produced it.

An SSM's whole history is a fixed-size state, so a conversation's next turn need not
re-read its history: restore the state saved after the tokens it shares with the last
turn, then evaluate only the new tokens. Entries are keyed by the model file's sha256 and
a hash of the exact token prefix, and live in tiers, fastest first:

    RAM (byte budget, least recently used evicted) → local disk → shared directory

A save goes to RAM at once and to the slower tiers on a background thread; a hit in a
slower tier is promoted to RAM. Every entry carries a header (model sha256, llama.cpp
runtime version, token count, payload size) and the tokens themselves; an entry whose
header or tokens do not match is refused, never restored. `StateStore` is the small
interface a new tier (S3, say) implements.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import queue
import struct
import tempfile
import threading
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from demigod.engines.base import StateCacheStats

log = logging.getLogger(__name__)

MAGIC = b"DGSTATE1"
_HEADER_LENGTH = struct.Struct("<I")
_TOKEN_TYPE = "i"  # int32, as llama_token
_SUFFIX = ".state"


class StateStore(Protocol):
    """One tier: encoded entries by (namespace, key). Keys look like '<n_tokens>-<hash>'."""

    tier: str

    def keys(self, namespace: str) -> Iterable[str]:
        """The keys stored under `namespace` (may be stale by the time they are read)."""
        ...

    def get(self, namespace: str, key: str) -> bytes | None:
        """The entry, or None when it is gone."""
        ...

    def put(self, namespace: str, key: str, blob: bytes) -> None:
        """Store (or replace) an entry; may evict others to respect a budget."""
        ...

    def size_bytes(self) -> int:
        """Bytes this process holds in the tier."""
        ...


class MemoryStore:
    """Entries in process memory under a byte budget, least recently used evicted first."""

    tier = "ram"

    def __init__(self, budget_bytes: int) -> None:
        self._budget = budget_bytes
        self._entries: collections.OrderedDict[tuple[str, str], bytes] = collections.OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def keys(self, namespace: str) -> list[str]:
        with self._lock:
            return [key for space, key in self._entries if space == namespace]

    def get(self, namespace: str, key: str) -> bytes | None:
        with self._lock:
            blob = self._entries.get((namespace, key))
            if blob is not None:
                self._entries.move_to_end((namespace, key))
            return blob

    def put(self, namespace: str, key: str, blob: bytes) -> None:
        if len(blob) > self._budget:
            return  # one entry larger than the whole budget would evict everything
        with self._lock:
            old = self._entries.pop((namespace, key), None)
            self._bytes -= len(old) if old is not None else 0
            self._entries[(namespace, key)] = blob
            self._bytes += len(blob)
            while self._bytes > self._budget:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted)

    def size_bytes(self) -> int:
        with self._lock:
            return self._bytes


class DirectoryStore:
    """Entries as files `<root>/<namespace>/<key>.state`, written atomically (temp + rename)
    so readers in other processes never see half a file. With a budget, the least recently
    used files (by mtime, refreshed on read) are deleted first; None means unbounded (a
    shared directory is pruned by whoever operates it)."""

    def __init__(self, root: Path, tier: str, budget_bytes: int | None = None) -> None:
        self.root = root
        self.tier = tier
        self._budget = budget_bytes
        self._lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)
        self._bytes = sum(path.stat().st_size for path in root.glob(f"*/*{_SUFFIX}"))

    def keys(self, namespace: str) -> list[str]:
        try:
            with os.scandir(self.root / namespace) as entries:
                return [e.name[: -len(_SUFFIX)] for e in entries if e.name.endswith(_SUFFIX)]
        except FileNotFoundError:
            return []

    def get(self, namespace: str, key: str) -> bytes | None:
        path = self.root / namespace / f"{key}{_SUFFIX}"
        try:
            blob = path.read_bytes()
            os.utime(path)  # recently used: evicted last
        except FileNotFoundError:
            return None
        return blob

    def put(self, namespace: str, key: str, blob: bytes) -> None:
        folder = self.root / namespace
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{key}{_SUFFIX}"
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(blob)
        previous = target.stat().st_size if target.exists() else 0
        os.replace(temporary, target)
        with self._lock:
            self._bytes += len(blob) - previous
        if self._budget is not None and self._bytes > self._budget:
            self._evict(self._budget)

    def size_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def _evict(self, budget: int) -> None:
        files = []
        for path in self.root.glob(f"*/*{_SUFFIX}"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            files.append((stat.st_mtime_ns, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= budget:
                break
            path.unlink(missing_ok=True)
            total -= size
        with self._lock:
            self._bytes = total


@dataclass(frozen=True)
class CachedState:
    """A restorable state: the tokens it covers and llama.cpp's sequence-state bytes."""

    tokens: tuple[int, ...]
    payload: bytes
    tier: str


class EntryError(ValueError):
    """An entry was written for another model or runtime, or is damaged."""


def encode_entry(model_sha256: str, runtime: str, tokens: Sequence[int], payload: bytes) -> bytes:
    """Header (magic, JSON with model sha256, runtime version, sizes), tokens, payload."""
    header = json.dumps(
        {
            "model_sha256": model_sha256,
            "runtime": runtime,
            "n_tokens": len(tokens),
            "size": len(payload),
        },
        separators=(",", ":"),
    ).encode()
    return b"".join(
        [
            MAGIC,
            _HEADER_LENGTH.pack(len(header)),
            header,
            array(_TOKEN_TYPE, tokens).tobytes(),
            payload,
        ]
    )


def decode_entry(blob: bytes, model_sha256: str, runtime: str) -> tuple[tuple[int, ...], bytes]:
    """(tokens, payload) of an entry. Raises EntryError on a foreign or damaged entry."""
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + _HEADER_LENGTH.size:
        raise EntryError("not a state entry")
    start = len(MAGIC) + _HEADER_LENGTH.size
    (length,) = _HEADER_LENGTH.unpack_from(blob, len(MAGIC))
    try:
        header = json.loads(blob[start : start + length])
    except ValueError as exc:
        raise EntryError("unreadable header") from exc
    if header.get("model_sha256") != model_sha256:
        raise EntryError(f"saved for model {str(header.get('model_sha256'))[:12]}…")
    if header.get("runtime") != runtime:
        raise EntryError(f"saved by runtime {header.get('runtime')!r}, this is {runtime!r}")
    token_start = start + length
    payload_start = token_start + 4 * int(header["n_tokens"])
    if len(blob) - payload_start != header["size"]:
        raise EntryError("truncated entry")
    tokens = array(_TOKEN_TYPE)
    tokens.frombytes(blob[token_start:payload_start])
    return tuple(tokens), blob[payload_start:]


def prefix_keys(namespace: str, tokens: Sequence[int], lengths: Iterable[int]) -> dict[int, str]:
    """Keys of `tokens[:n]` for each n in `lengths`, hashing the tokens once."""
    hasher = hashlib.sha256(namespace.encode())
    keys: dict[int, str] = {}
    done = 0
    for n in sorted(set(lengths)):
        hasher.update(array(_TOKEN_TYPE, tokens[done:n]).tobytes())
        done = n
        keys[n] = f"{n}-{hasher.copy().hexdigest()[:40]}"
    return keys


class StateCache:
    """Saved sequence states of one model across tiers. Thread-safe.

    `model_sha256` and `runtime` identify what can restore an entry; the first 32 hex
    digits of the sha256 name the namespace, so models never see each other's entries.
    """

    def __init__(self, model_sha256: str, runtime: str, stores: Sequence[StateStore]) -> None:
        if not stores:
            raise ValueError("a state cache needs at least one store")
        self.model_sha256 = model_sha256
        self.runtime = runtime
        self._namespace = model_sha256[:32]
        self._stores = list(stores)
        self._hits = dict.fromkeys((store.tier for store in self._stores), 0)
        self._misses = dict(self._hits)
        self._lock = threading.Lock()
        self._writes: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write_behind, name="state-cache", daemon=True)
        self._writer.start()

    def lookup(self, tokens: Sequence[int], *, peek: bool = False) -> CachedState | None:
        """The saved state of the longest proper prefix of `tokens` (at least one token is
        left to evaluate, since the next token's logits come from evaluating it). `peek` leaves
        the counters and the tiers alone (no promotion to RAM)."""
        listed = [
            (store, {key for key in store.keys(self._namespace) if 0 < _length(key) < len(tokens)})
            for store in self._stores
        ]
        lengths = {_length(key) for _, keys in listed for key in keys}
        wanted = prefix_keys(self._namespace, tokens, lengths)
        for n in sorted(wanted, reverse=True):
            for position, (store, keys) in enumerate(listed):
                if wanted[n] not in keys:
                    continue
                found = self._read(store, wanted[n], tokens[:n])
                if found is None:
                    continue
                if peek:
                    return CachedState(tuple(tokens[:n]), found[0], store.tier)
                self._count(hit=store.tier, missed=[s.tier for s, _ in listed[:position]])
                if position > 0:
                    self._stores[0].put(self._namespace, wanted[n], found[1])
                return CachedState(tuple(tokens[:n]), found[0], store.tier)
        if not peek:
            self._count(hit=None, missed=[store.tier for store in self._stores])
        return None

    def save(self, tokens: Sequence[int], payload: bytes) -> None:
        """Keep `payload` as the state after `tokens`: RAM now, the slower tiers soon (on
        the writer thread)."""
        if not tokens:
            return
        key = prefix_keys(self._namespace, tokens, [len(tokens)])[len(tokens)]
        blob = encode_entry(self.model_sha256, self.runtime, tokens, payload)
        self._stores[0].put(self._namespace, key, blob)
        if len(self._stores) > 1:
            self._writes.put((key, blob))

    def flush(self) -> None:
        """Wait until every save has reached every tier."""
        self._writes.join()

    def close(self) -> None:
        """Finish pending writes and stop the writer thread."""
        self._writes.put(None)
        self._writer.join()

    def stats(self) -> StateCacheStats:
        with self._lock:
            return StateCacheStats(
                hits=dict(self._hits),
                misses=dict(self._misses),
                bytes={store.tier: store.size_bytes() for store in self._stores},
            )

    def _read(
        self, store: StateStore, key: str, prefix: Sequence[int]
    ) -> tuple[bytes, bytes] | None:
        """(payload, blob) when the entry is there and belongs to this model and prefix."""
        blob = store.get(self._namespace, key)
        if blob is None:
            return None
        try:
            tokens, payload = decode_entry(blob, self.model_sha256, self.runtime)
        except EntryError as exc:
            log.warning("state cache entry refused", extra={"tier": store.tier, "error": str(exc)})
            return None
        if tokens != tuple(prefix):  # a hash collision, however unlikely, must not restore
            return None
        return payload, blob

    def _count(self, hit: str | None, missed: list[str]) -> None:
        with self._lock:
            if hit is not None:
                self._hits[hit] += 1
            for tier in missed:
                self._misses[tier] += 1

    def _write_behind(self) -> None:
        while (item := self._writes.get()) is not None:
            key, blob = item
            for store in self._stores[1:]:
                try:
                    store.put(self._namespace, key, blob)
                except OSError as exc:  # a full or gone disk loses a cache entry, not a request
                    log.warning(
                        "state cache write failed", extra={"tier": store.tier, "error": str(exc)}
                    )
            self._writes.task_done()
        self._writes.task_done()


def _length(key: str) -> int:
    head, _, _ = key.partition("-")
    return int(head) if head.isdigit() else -1


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
