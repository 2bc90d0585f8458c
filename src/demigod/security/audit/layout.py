"""Where a chain's files live: one folder per chain (per gateway node), greppable JSONL.

<audit.dir>/<node>/records-<first seq, 12 digits>.jsonl   records, one per line
<audit.dir>/<node>/checkpoints.jsonl                      signed Merkle checkpoints
<audit.dir>/<node>/public-keys/<key id>.pem               checkpoint verification keys
<audit.dir>/<node>/tsa-certs/<sha256>.pem                 certificates the TSA sent
"""

from __future__ import annotations

import os
import re
from pathlib import Path

SEGMENT_PATTERN = re.compile(r"^records-(\d{12})\.jsonl$")
CHECKPOINTS_FILE = "checkpoints.jsonl"
PUBLIC_KEYS_DIR = "public-keys"
TSA_CERTS_DIR = "tsa-certs"
LOCK_FILE = ".lock"


def segment_name(first_seq: int) -> str:
    return f"records-{first_seq:012d}.jsonl"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """(first seq, path) of every segment, in seq order."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = SEGMENT_PATTERN.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def is_chain(directory: Path) -> bool:
    return bool(list_segments(directory)) or (directory / CHECKPOINTS_FILE).is_file()


def find_chains(directory: Path) -> list[Path]:
    """`directory` itself when it is a chain, else each chain folder directly inside it."""
    if is_chain(directory):
        return [directory]
    if not directory.is_dir():
        return []
    return sorted(child for child in directory.iterdir() if child.is_dir() and is_chain(child))


def fsync_directory(directory: Path) -> None:
    """Make a created or removed file name durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
