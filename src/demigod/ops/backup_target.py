"""Where backups go: a directory (another disk, an NFS mount) or an S3-compatible bucket.

Both hold the same keys (`registry/...`, `audit/...`, `state/...`, `models/...`); a key
is a relative, slash-separated name. The S3 target is built from the `snapshots` section
(endpoint, region, addressing style; credentials from the environment, as boto3 reads
them) with the bucket prefix `ops.backup.prefix`, so backups and model snapshots share one
client and one set of credentials.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from demigod.config import Settings, SnapshotConfig
from demigod.lifecycle.artefacts import write_atomic
from demigod.lifecycle.snapshots import SnapshotStore
from demigod.security.audit.layout import fsync_directory


class BackupError(RuntimeError):
    """A backup or restore step failed; the message says which and why."""


class BackupTarget(Protocol):
    """The store a backup is written to and a restore reads from."""

    description: str  # where, for reports: a path or an s3:// URI

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def put_file(self, key: str, path: Path) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def get_file(self, key: str, dest: Path) -> None: ...

    def keys(self, prefix: str) -> list[str]: ...

    def delete(self, key: str) -> None: ...

    def litestream_replica(self, key: str) -> dict[str, Any]:
        """Litestream's `replica:` block for a replica stored under `key`."""
        ...


class DirectoryTarget:
    """Keys are files under `root`; every write is atomic (temporary name, fsync, rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.description = str(self.root)

    def put_bytes(self, key: str, data: bytes) -> None:
        write_atomic(self._path(key), data)

    def put_file(self, key: str, path: Path) -> None:
        # Model files are large: stream them rather than read them whole.
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
        with path.open("rb") as source, partial.open("wb") as out:
            while block := source.read(1 << 20):
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(dest)
        fsync_directory(dest.parent)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise BackupError(f"{key} is not in the backup at {self.root}") from exc

    def get_file(self, key: str, dest: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise BackupError(f"{key} is not in the backup at {self.root}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        with source.open("rb") as handle, dest.open("wb") as out:
            while block := handle.read(1 << 20):
                out.write(block)

    def keys(self, prefix: str) -> list[str]:
        # The folder the prefix names, or the one holding the names it starts.
        start = (
            self.root / prefix
            if not prefix or prefix.endswith("/")
            else (self.root / prefix).parent
        )
        if not start.is_dir() or not start.resolve().is_relative_to(self.root):
            return []
        found = (
            path.relative_to(self.root).as_posix()
            for path in start.rglob("*")
            if path.is_file() and not path.name.endswith(".partial")
        )
        return sorted(key for key in found if key.startswith(prefix))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def litestream_replica(self, key: str) -> dict[str, Any]:
        return {"type": "file", "path": str(self._path(key))}

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise BackupError(f"backup key {key!r} leaves {self.root}")
        return path


class S3Target:
    """Keys are objects under `prefix` in the snapshots bucket."""

    def __init__(self, config: SnapshotConfig, prefix: str, *, client: Any | None = None) -> None:
        if not config.bucket:
            raise BackupError(
                "no backup destination: set ops.backup.dir, or snapshots.bucket (with "
                "snapshots.endpoint_url for MinIO or Ceph) for S3"
            )
        self.config = config
        self.bucket = config.bucket
        self.prefix = prefix
        self._store = SnapshotStore(config, client=client)
        self.description = f"s3://{self.bucket}/{prefix}"

    def put_bytes(self, key: str, data: bytes) -> None:
        with self._errors(f"writing {key}"):
            self._store.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)

    def put_file(self, key: str, path: Path) -> None:
        with self._errors(f"uploading {path} as {key}"):
            self._store.client.upload_file(str(path), self.bucket, self.prefix + key)

    def get_bytes(self, key: str) -> bytes:
        with self._errors(f"reading {key}"):
            body = self._store.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            return bytes(body["Body"].read())

    def get_file(self, key: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with self._errors(f"downloading {key}"):
            self._store.client.download_file(self.bucket, self.prefix + key, str(dest))

    def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        with self._errors(f"listing {prefix}"):
            pages = self._store.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix
            )
            for page in pages:
                found += [item["Key"][len(self.prefix) :] for item in page.get("Contents", [])]
        return sorted(found)

    def delete(self, key: str) -> None:
        with self._errors(f"deleting {key}"):
            self._store.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)

    def litestream_replica(self, key: str) -> dict[str, Any]:
        replica: dict[str, Any] = {
            "type": "s3",
            "bucket": self.bucket,
            "path": self.prefix + key,
            "force-path-style": self.config.addressing_style == "path",
        }
        if self.config.endpoint_url:
            replica["endpoint"] = self.config.endpoint_url
        if region := self.config.region or os.environ.get("AWS_DEFAULT_REGION"):
            replica["region"] = region
        return replica

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Boto's errors as BackupError naming the target and what was being done."""
        from boto3.exceptions import S3UploadFailedError  # type: ignore[import-untyped]
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

        try:
            yield
        except (BotoCoreError, ClientError, S3UploadFailedError) as error:
            raise BackupError(f"{self.description}: {what} failed: {error}") from error


def open_target(settings: Settings, *, client: Any | None = None) -> BackupTarget:
    """The configured destination: `ops.backup.dir`, else the snapshots bucket.
    Raises BackupError when neither is configured."""
    backup = settings.ops.backup
    if backup.dir is not None:
        return DirectoryTarget(backup.dir)
    return S3Target(settings.snapshots, backup.prefix, client=client)
