"""A PostgreSQL cluster this process starts on loopback: the test suite's registry server,
the restore drill's primary and its restored replacement.

Debian keeps the server binaries out of PATH (/usr/lib/postgresql/<major>/bin). initdb and
postgres refuse to run as root, so as root the cluster belongs to the `postgres` user, and
its processes are started as that user directly: a signal sent to the server reaches it.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from demigod.processes import free_port, stop_process

START_TIMEOUT_SECONDS = 60.0
_databases = itertools.count()


class PostgresUnavailableError(RuntimeError):
    """The PostgreSQL server, or the client program asked for, is not installed."""


def _newest_major(tool: str) -> Path | None:
    """`tool` in the newest major's /usr/lib/postgresql/<major>/bin (numerically: 17 is
    newer than 9.6), or None."""

    def major(path: str) -> tuple[int, ...]:
        version = Path(path).parts[-3]
        return tuple(int(part) for part in version.split(".") if part.isdigit())

    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"), key=major)
    return Path(found[-1]) if found else None


def postgres_bin_dir() -> Path:
    """Where initdb, postgres and pg_ctl live (the newest installed server major).
    Raises PostgresUnavailableError when there is none."""
    initdb = _newest_major("initdb") or shutil.which("initdb")
    if initdb is None:
        raise PostgresUnavailableError(
            "PostgreSQL server is not installed (Debian package postgresql)"
        )
    return Path(initdb).parent


def postgres_client_tool(tool: str) -> Path:
    """A client program (pg_basebackup, psql) of the newest installed major: Debian's
    client package (postgresql-client-<major>, what the gateway image carries) puts it in
    /usr/lib/postgresql/<major>/bin too, without the server. Raises
    PostgresUnavailableError when it is not installed."""
    path = _newest_major(tool) or shutil.which(tool)
    if path is None:
        raise PostgresUnavailableError(
            f"{tool} is not installed (Debian package postgresql-client)"
        )
    return Path(path)


class PostgresCluster:
    """A cluster in `root/data` on a free loopback port, trust authentication (loopback
    only). `start()` it with extra server settings (`-c name=value`), `stop()` it."""

    def __init__(self, root: Path | None = None, *, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir or postgres_bin_dir()
        self.root = root or Path(tempfile.mkdtemp(prefix="demigod-pg-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.data = self.root / "data"
        self.port = free_port()
        self.owner = "postgres" if os.geteuid() == 0 else None
        if self.owner:
            shutil.chown(self.root, self.owner, self.owner)
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.root / "server.log"

    def init(self) -> None:
        """initdb an empty cluster (superuser `postgres`)."""
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def start(
        self, settings: Mapping[str, str] | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        """Start the server on the existing data dir; returns once it accepts connections
        (after recovery, for a restored one). Raises RuntimeError with its log otherwise."""
        options = [f"-c{name}={value}" for name, value in (settings or {}).items()]
        command = [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-h",
            "127.0.0.1",
            "-k",
            str(self.root),
            *options,
        ]
        self.process = subprocess.Popen(
            command,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            **self._as_owner(),
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._accepting():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"postgres did not start:\n{self.log.read_text(errors='replace')}")

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of `database` on this cluster."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        name = name or f"registry_{os.getpid()}_{next(_databases)}"
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url(name)

    def stop(self, *, immediate: bool = False) -> None:
        """Stop the server: a clean shutdown (clients disconnected, a checkpoint), or
        `immediate` (SIGQUIT: no checkpoint, as a crash leaves it)."""
        if self.process is not None:
            # SIGINT is PostgreSQL's "fast" shutdown, pg_ctl's default; SIGTERM ("smart")
            # would wait for every client to leave, and pooled clients never do.
            stop_process(self.process, 30, signal.SIGQUIT if immediate else signal.SIGINT)

    def remove(self) -> None:
        """Stop and delete everything under `root`."""
        self.stop(immediate=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def run(self, tool: str, *args: str) -> subprocess.CompletedProcess[bytes]:
        """Run one of the server's tools as the cluster's owner. Raises CalledProcessError."""
        return subprocess.run(
            [str(self.bin_dir / tool), *args],
            check=True,
            capture_output=True,
            cwd=self.root,
            **self._as_owner(),
        )

    def _as_owner(self) -> dict[str, Any]:
        """Popen arguments that run a child as the owner itself (not under runuser, which
        does not pass SIGQUIT on: the server would outlive an immediate stop)."""
        if self.owner is None:
            return {}
        return {"user": self.owner, "group": self.owner, "extra_groups": []}

    def _accepting(self) -> bool:
        ready = subprocess.run(
            [str(self.bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
            capture_output=True,
            check=False,
        )
        return ready.returncode == 0
