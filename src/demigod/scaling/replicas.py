"""Worker processes of one model on this host: `demigod worker --model NAME` on free
loopback ports, started without waiting (readiness is polled) and stopped gracefully
(SIGTERM: uvicorn stops accepting and lets in-flight requests finish)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from demigod.processes import free_port, stop_process


@dataclass(eq=False)
class WorkerReplica:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    started: float = field(default_factory=time.monotonic)
    ready: bool = False

    def alive(self) -> bool:
        return self.process.poll() is None


class WorkerProcesses:
    """Starts and stops workers serving `model`. `extra_args` go to every `demigod
    worker` (e.g. `--config FILE`); `python` runs `-m demigod`."""

    def __init__(
        self,
        model: str,
        log_dir: Path,
        *,
        extra_args: Sequence[str] = (),
        python: str = sys.executable,
        host: str = "127.0.0.1",
    ) -> None:
        self.model = model
        self.log_dir = log_dir
        self.extra_args = list(extra_args)
        self.python = python
        self.host = host

    def start(self) -> WorkerReplica:
        """Launch one worker; it is ready once `poll_ready` says so."""
        port = free_port()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"worker-{self.model}-{port}.log"
        command = [self.python, "-m", "demigod", "worker", "--model", self.model]
        command += ["--host", self.host, "--port", str(port), *self.extra_args]
        process = subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT)
        return WorkerReplica(f"http://{self.host}:{port}", process, log)

    @staticmethod
    def poll_ready(replica: WorkerReplica, client: httpx.Client) -> bool:
        """Whether the worker answers /readyz 200 now (remembered once true)."""
        if not replica.ready and replica.alive():
            with contextlib.suppress(httpx.HTTPError):
                replica.ready = client.get(f"{replica.url}/readyz").status_code == 200
        return replica.ready

    @staticmethod
    def stop(replica: WorkerReplica, timeout: float) -> None:
        """SIGTERM, then SIGKILL when it has not exited after `timeout` seconds."""
        stop_process(replica.process, timeout)
