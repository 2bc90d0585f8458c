"""A model's published replica set: one JSON file per model, written atomically by
whoever starts and stops the replicas (`demigod ops autoscale`) and read by the gateway
(`gateway.replicas_dir`), which then routes to exactly these URLs without a restart.

    <replicas_dir>/<model>.json   {"model": "...", "urls": ["http://..."], "updated": 1.7e9}

A replica about to stop is removed from the file first: the gateway stops sending it new
requests and lets its in-flight ones finish (it drains), and only then is it stopped.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from demigod.lifecycle.artefacts import write_atomic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplicaSet:
    model: str
    urls: tuple[str, ...]
    updated: float


def replica_set_path(directory: Path, model: str) -> Path:
    return directory / f"{model}.json"


def publish(directory: Path, model: str, urls: list[str]) -> ReplicaSet:
    """Replace `model`'s published replica set with `urls` (atomically)."""
    published = ReplicaSet(model, tuple(urls), time.time())
    payload = {"model": model, "urls": list(urls), "updated": published.updated}
    write_atomic(replica_set_path(directory, model), json.dumps(payload).encode())
    return published


def read_replica_sets(directory: Path) -> dict[str, ReplicaSet]:
    """Every published set in `directory`, by model; unreadable files are skipped with an
    error logged (the previous set stays in force where the reader keeps one)."""
    sets: dict[str, ReplicaSet] = {}
    if not directory.is_dir():
        return sets
    for path in sorted(directory.glob("*.json")):
        try:
            raw = json.loads(path.read_text())
            urls = tuple(str(url).rstrip("/") for url in raw["urls"])
            sets[str(raw["model"])] = ReplicaSet(str(raw["model"]), urls, float(raw["updated"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("replica set %s unreadable: %s", path, exc)
    return sets
