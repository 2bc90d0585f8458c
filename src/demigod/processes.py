"""Local servers in subprocesses: a free loopback port, and waiting until one answers.

Used wherever demigod starts a server it then talks to (test fixtures, benchmarks).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time

import httpx


class ServerNotReadyError(RuntimeError):
    """The server exited, or did not answer 200 in time (it is then killed)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ready(
    process: subprocess.Popen[bytes], url: str, *, timeout: float, interval: float = 0.2
) -> None:
    """Poll `url` until it answers 200. Raises ServerNotReadyError if `process` exits first,
    or kills it and raises when `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerNotReadyError(f"exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(interval)
    process.kill()
    raise ServerNotReadyError(f"not ready after {timeout}s")


def stop_process(
    process: subprocess.Popen[bytes], timeout: float, how: int = signal.SIGTERM
) -> None:
    """Send `how` (SIGTERM: a graceful stop), wait up to `timeout` seconds, then SIGKILL."""
    if process.poll() is not None:
        return
    process.send_signal(how)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
