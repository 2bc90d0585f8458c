"""How long `demigod --help` and `demigod --version` take in a fresh process.

Run: .venv/bin/python bench/cli_startup.py [--n 15]

Each command runs `--n` times in a new interpreter (the console script's own startup
included); the reference is `python -c pass` and `python -c "import typer"` (the floor any
typer CLI pays). Prints a table (median and p90 milliseconds) and one JSON line; the load
average is printed too, because a shared machine slows every row. Never run by the suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BIN = Path(sys.executable).parent


def timed(command: list[str], n: int) -> list[float]:
    """Wall-clock milliseconds of `n` runs of `command`."""
    runs = []
    for _ in range(n):
        started = time.perf_counter()
        subprocess.run(
            command, check=True, capture_output=True, env={**os.environ, "COLUMNS": "100"}
        )
        runs.append((time.perf_counter() - started) * 1000)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=15, help="runs per command")
    n = parser.parse_args().n
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import typer'": [sys.executable, "-c", "import typer"],
        "demigod --version": [str(BIN / "demigod"), "--version"],
        "demigod --help": [str(BIN / "demigod"), "--help"],
        "demigod models --help": [str(BIN / "demigod"), "models", "--help"],
    }
    rows = {}
    for label, command in commands.items():
        runs = sorted(timed(command, n))
        rows[label] = {"median_ms": round(statistics.median(runs), 1),
                       "p90_ms": round(runs[int(0.9 * (len(runs) - 1))], 1)}  # fmt: skip
    load = os.getloadavg()[0]
    print(f"{'command':28} {'median ms':>10} {'p90 ms':>8}   (n={n}, load {load:.2f})")
    for label, row in rows.items():
        print(f"{label:28} {row['median_ms']:>10} {row['p90_ms']:>8}")
    machine = f"{platform.machine()} {os.cpu_count()} cpus"
    print(json.dumps({
        "bench": "cli_startup", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine, "python": platform.python_version(),
        "load_average": round(load, 2), "n": n, "rows": rows,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
