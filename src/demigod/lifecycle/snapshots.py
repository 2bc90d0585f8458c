"""Snapshots of model files in S3-compatible object storage (AWS S3, MinIO, Ceph RGW).

`upload` hashes the file while it computes the ETag the store will report (S3's MD5, or
for multipart uploads the MD5 of the parts' MD5s followed by `-<parts>`), uploads with
the same part size, stores the sha256 as object metadata, and then checks the store's
answer: size, metadata, and the ETag, which the server computes from the bytes it
received. Where a store's ETag is not an MD5 (SSE-KMS, some gateways), the object is read
back and hashed instead. A copy that does not check out is deleted and reported.

`download` writes to a temporary name beside the destination, hashes, and renames only
when the sha256 is the expected one.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from demigod.config import SnapshotConfig
from demigod.extras import require
from demigod.lifecycle.errors import LifecycleError

SHA256_METADATA_KEY = "sha256"  # sent as x-amz-meta-sha256
MAX_PARTS = 10_000  # S3's limit on the parts of one upload
_READ_CHUNK = 1 << 20


S3_FEATURE = "S3 snapshots"


class SnapshotError(LifecycleError):
    """The store is not configured or unreachable, or a copy failed its checksum."""


@dataclass(frozen=True)
class Snapshot:
    """An object in the store: `uri` is s3://bucket/key."""

    uri: str
    sha256: str
    size: int
    etag: str | None = None
    verified_by: str = "etag"  # "etag" or "read-back"


class SnapshotStore:
    """Uploads and downloads snapshots under `config.prefix` of `config.bucket`."""

    def __init__(self, config: SnapshotConfig | None, *, client: Any | None = None) -> None:
        """`client`: a ready boto3 S3 client (default: one built from `config`)."""
        self.config = config or SnapshotConfig()
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            boto3 = require("boto3", S3_FEATURE)
            config = require("botocore.config", S3_FEATURE).Config
            self._client = boto3.client(
                "s3",
                endpoint_url=self.config.endpoint_url,
                region_name=self.config.region,
                config=config(s3={"addressing_style": self.config.addressing_style}),
            )
        return self._client

    def uri_for(self, key: str) -> str:
        """The s3:// URI `key` is stored under (prefix applied)."""
        return f"s3://{self._bucket()}/{self.config.prefix}{key}"

    def upload(self, path: Path, key: str) -> Snapshot:
        """Upload `path` as `key` (under the prefix), verify the stored copy, return it.

        Raises SnapshotError when the store is not configured, the upload fails, or the
        stored object does not match the file (the bad copy is then deleted).
        """
        from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped]

        bucket = self._bucket()
        object_key = f"{self.config.prefix}{key}"
        uri = f"s3://{bucket}/{object_key}"
        size = path.stat().st_size
        part_size = self._part_size(size)
        multipart = size >= self.config.multipart_threshold_bytes  # as boto3 decides
        sha256, expected_etag = _digests(path, part_size if multipart else None)
        transfer = TransferConfig(
            multipart_threshold=self.config.multipart_threshold_bytes,
            multipart_chunksize=part_size,
            use_threads=True,
        )
        errors = _client_errors()
        try:
            self.client.upload_file(
                str(path),
                bucket,
                object_key,
                ExtraArgs={"Metadata": {SHA256_METADATA_KEY: sha256}},
                Config=transfer,
            )
            head = self.client.head_object(Bucket=bucket, Key=object_key)
        except errors as error:
            raise SnapshotError(f"uploading {path} to {uri} failed: {error}") from error
        etag = str(head.get("ETag", "")).strip('"')
        problem = None
        if int(head["ContentLength"]) != size:
            problem = f"stored size {head['ContentLength']} != {size}"
        elif head.get("Metadata", {}).get(SHA256_METADATA_KEY) != sha256:
            problem = "stored sha256 metadata differs"
        verified_by = "etag"
        if problem is None and etag != expected_etag:
            # Not an MD5-style ETag (encrypted or gateway store): read the copy back.
            verified_by = "read-back"
            stored = self._hash_object(bucket, object_key)
            if stored != sha256:
                problem = f"stored object hashes to {stored}, expected {sha256}"
        if problem is not None:
            self.client.delete_object(Bucket=bucket, Key=object_key)
            raise SnapshotError(f"snapshot {uri} failed verification ({problem}); deleted")
        return Snapshot(uri, sha256, size, etag, verified_by)

    def download(self, uri: str, dest: Path, expected_sha256: str) -> Path:
        """Fetch `uri` to `dest` and return `dest`, only if its sha256 is `expected_sha256`.

        The object is written to a temporary file beside `dest` and renamed into place, so
        `dest` never holds a partial or wrong copy. Raises SnapshotError for a bad URI, a
        failed download or a checksum mismatch.
        """
        bucket, key = parse_s3_uri(uri)
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
        try:
            try:
                self.client.download_file(bucket, key, str(partial))
            except _client_errors() as error:
                raise SnapshotError(f"downloading {uri} failed: {error}") from error
            actual, _ = _digests(partial, None)
            if actual != expected_sha256:
                raise SnapshotError(
                    f"{uri} hashes to {actual}, expected {expected_sha256}: refused"
                )
            partial.replace(dest)
        finally:
            partial.unlink(missing_ok=True)
        return dest

    def delete(self, uri: str) -> None:
        """Remove the object at `uri` (absent objects are fine)."""
        bucket, key = parse_s3_uri(uri)
        try:
            self.client.delete_object(Bucket=bucket, Key=key)
        except _client_errors() as error:
            raise SnapshotError(f"deleting {uri} failed: {error}") from error

    def _bucket(self) -> str:
        if not self.config.bucket:
            raise SnapshotError(
                "snapshots are not configured: set snapshots.bucket (and snapshots.endpoint_url "
                "for MinIO or Ceph) in mesh.yaml or DEMIGOD_SNAPSHOTS__BUCKET"
            )
        return self.config.bucket

    def _part_size(self, size: int) -> int:
        # Bigger parts than configured only when the file would need over MAX_PARTS.
        return max(self.config.multipart_chunk_bytes, math.ceil(size / MAX_PARTS))

    def _hash_object(self, bucket: str, key: str) -> str:
        body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
        digest = hashlib.sha256()
        for chunk in iter(lambda: body.read(_READ_CHUNK), b""):
            digest.update(chunk)
        return digest.hexdigest()


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of `s3://bucket/key`; raises SnapshotError for anything else."""
    parsed = urlparse(uri)
    key = parsed.path.lstrip("/")
    if parsed.scheme != "s3" or not parsed.netloc or not key:
        raise SnapshotError(f"{uri!r} is not an s3://bucket/key URI")
    return parsed.netloc, key


def _digests(path: Path, part_size: int | None) -> tuple[str, str]:
    """(sha256, S3 ETag) of `path`: the ETag of a single-part upload when `part_size` is
    None, else of a multipart upload in parts of `part_size` bytes."""
    sha = hashlib.sha256()
    whole = hashlib.md5(usedforsecurity=False)
    part_md5s: list[bytes] = []
    part = hashlib.md5(usedforsecurity=False)
    in_part = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            sha.update(chunk)
            whole.update(chunk)
            if part_size is None:
                continue
            view = memoryview(chunk)
            while view:
                take = min(len(view), part_size - in_part)
                part.update(view[:take])
                in_part += take
                view = view[take:]
                if in_part == part_size:
                    part_md5s.append(part.digest())
                    part = hashlib.md5(usedforsecurity=False)
                    in_part = 0
    if in_part:
        part_md5s.append(part.digest())
    if part_size is None or len(part_md5s) == 0:
        return sha.hexdigest(), whole.hexdigest()
    combined = hashlib.md5(b"".join(part_md5s), usedforsecurity=False).hexdigest()
    return sha.hexdigest(), f"{combined}-{len(part_md5s)}"


def _client_errors() -> tuple[type[Exception], ...]:
    botocore = require("botocore.exceptions", S3_FEATURE)
    boto3 = require("boto3.exceptions", S3_FEATURE)
    return (botocore.BotoCoreError, botocore.ClientError, boto3.S3UploadFailedError, OSError)
