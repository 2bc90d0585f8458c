"""SnapshotStore against a real S3-protocol server (moto's standalone server)."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from demigod.config import SnapshotConfig
from demigod.lifecycle.pull import pull
from demigod.lifecycle.snapshots import SnapshotError, SnapshotStore, parse_s3_uri
from tests.conftest import S3Server

MIB = 1024**2


@pytest.fixture
def bucket(s3_server: S3Server, s3_credentials: None) -> str:
    name = f"snapshots-{uuid.uuid4().hex[:12]}"
    store = SnapshotStore(SnapshotConfig(endpoint_url=s3_server.endpoint_url, bucket=name))
    store.client.create_bucket(Bucket=name)
    return name


def make_store(s3_server: S3Server, bucket: str, **config: Any) -> SnapshotStore:
    return SnapshotStore(
        SnapshotConfig(endpoint_url=s3_server.endpoint_url, bucket=bucket, **config)
    )


def write_random(path: Path, size: int) -> str:
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def test_a_small_file_round_trips_verified(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    store = make_store(s3_server, bucket, prefix="models/")
    source = tmp_path / "model.gguf"
    sha = write_random(source, 300_000)

    snapshot = store.upload(source, "tiny/v1.gguf")
    assert snapshot.uri == f"s3://{bucket}/models/tiny/v1.gguf"
    assert (snapshot.sha256, snapshot.size) == (sha, 300_000)
    assert snapshot.verified_by == "etag" and "-" not in str(snapshot.etag)
    head = store.client.head_object(Bucket=bucket, Key="models/tiny/v1.gguf")
    assert head["Metadata"]["sha256"] == sha

    restored = store.download(snapshot.uri, tmp_path / "restored" / "model.gguf", sha)
    assert restored.read_bytes() == source.read_bytes()


def test_a_big_file_goes_up_in_parts_and_the_etag_proves_every_byte(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    store = make_store(
        s3_server, bucket, multipart_threshold_bytes=5 * MIB, multipart_chunk_bytes=5 * MIB
    )
    source = tmp_path / "big.gguf"
    sha = write_random(source, 12 * MIB + 7)

    snapshot = store.upload(source, "big.gguf")
    # The server's multipart ETag (MD5 of the parts' MD5s) matched the one computed locally.
    assert str(snapshot.etag).endswith("-3") and snapshot.verified_by == "etag"
    restored = store.download(snapshot.uri, tmp_path / "back.gguf", sha)
    assert hashlib.sha256(restored.read_bytes()).hexdigest() == sha


def test_download_refuses_a_checksum_mismatch_and_leaves_nothing(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    store = make_store(s3_server, bucket)
    source = tmp_path / "model.gguf"
    sha = write_random(source, 10_000)
    snapshot = store.upload(source, "m.gguf")
    # Someone overwrites the object in the bucket behind our back.
    bucket_name, key = parse_s3_uri(snapshot.uri)
    store.client.put_object(Bucket=bucket_name, Key=key, Body=b"tampered")

    dest = tmp_path / "out" / "model.gguf"
    with pytest.raises(SnapshotError, match=f"expected {sha}: refused"):
        store.download(snapshot.uri, dest, sha)
    assert list(dest.parent.iterdir()) == []


def test_a_bad_configuration_or_uri_is_named(
    s3_server: S3Server, s3_credentials: None, tmp_path: Path
) -> None:
    source = tmp_path / "m.gguf"
    source.write_bytes(b"x")
    with pytest.raises(SnapshotError, match=r"set snapshots\.bucket"):
        SnapshotStore(None).upload(source, "m.gguf")
    with pytest.raises(SnapshotError, match="failed"):
        make_store(s3_server, "no-such-bucket").upload(source, "m.gguf")
    with pytest.raises(SnapshotError, match="not an s3://bucket/key URI"):
        make_store(s3_server, "b").download("http://x/y", tmp_path / "z", "0" * 64)
    with pytest.raises(SnapshotError, match="downloading"):
        make_store(s3_server, "no-such-bucket").download(
            "s3://no-such-bucket/k", tmp_path / "z", "0" * 64
        )


def test_pull_from_an_s3_prefix(
    s3_server: S3Server, bucket: str, hf_folder: Path, tmp_path: Path
) -> None:
    store = make_store(s3_server, bucket, prefix="")
    for path in hf_folder.iterdir():
        store.client.upload_file(str(path), bucket, f"checkpoints/tiny/{path.name}")
    store.client.put_object(Bucket=bucket, Key="checkpoints/tiny/README.md", Body=b"skip me")

    pulled = pull(f"s3://{bucket}/checkpoints/tiny", tmp_path, endpoint=s3_server.endpoint_url)
    assert pulled.files == tuple(sorted(p.name for p in hf_folder.iterdir()))
    assert pulled.source_uri == f"s3://{bucket}/checkpoints/tiny"
    assert (pulled.path / "model.safetensors").read_bytes() == (
        hf_folder / "model.safetensors"
    ).read_bytes()
    # The same content pulled from a local folder is the same version.
    assert pull(str(hf_folder), tmp_path / "other").revision == pulled.revision
