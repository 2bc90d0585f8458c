"""PostgreSQL's `archive_command`: `python -m demigod.ops.wal_archive [--config FILE] %p %f`.

A module of its own, not a `demigod` subcommand, because the server runs it once per WAL
segment: it imports only the config and the backup target (under a second), where the
whole CLI takes several. Exit 0 tells PostgreSQL the segment is safe (it may then recycle
it); anything else makes it retry later, so a destination outage delays WAL recycling
rather than losing a segment.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from demigod.config import load_settings
from demigod.ops.backup_target import BackupError, open_target
from demigod.ops.postgres_backup import push_wal


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demigod.ops.wal_archive")
    parser.add_argument("--config", type=Path, default=None, help="mesh.yaml with ops.backup")
    parser.add_argument("path", type=Path, help="%%p: the file, relative to the data dir")
    parser.add_argument("name", help="%%f: its file name")
    args = parser.parse_args(argv)
    try:
        push_wal(open_target(load_settings(args.config)), args.path, args.name)
    except (BackupError, OSError, ValueError) as exc:
        print(f"demigod wal_archive: {args.name}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
