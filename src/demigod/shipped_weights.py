"""Trained weights that ship beside the data they were trained from.

The screen's model and the request classifier train in seconds — too slow for every
process start — so each package's `data/` folder holds `model.npz` next to `train.jsonl`,
stamped with that file's sha256. The weights are used only while the stamp matches (a
changed training file means they are stale); `python -m demigod.<package>.train` rewrites
them.
"""

from __future__ import annotations

import hashlib
import io
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

WEIGHTS_FILE, TRAIN_FILE = "model.npz", "train.jsonl"
_STAMP = "train_sha256"


def training_sha256(package: str) -> str:
    """sha256 of `package`'s train.jsonl (e.g. package="demigod.routing.data")."""
    return hashlib.sha256(resources.files(package).joinpath(TRAIN_FILE).read_bytes()).hexdigest()


def read(package: str) -> dict[str, np.ndarray] | None:
    """The arrays of `package`'s model.npz, or None when it is missing or was trained from
    another train.jsonl than the one shipped."""
    weights = resources.files(package).joinpath(WEIGHTS_FILE)
    if not weights.is_file():
        return None
    with np.load(io.BytesIO(weights.read_bytes())) as saved:
        arrays = {key: saved[key] for key in saved.files}
    if str(arrays.pop(_STAMP, "")) != training_sha256(package):
        return None
    return arrays


def write(package: str, arrays: dict[str, np.ndarray]) -> Path:
    """Writes `arrays` as `package`'s model.npz, stamped with its train.jsonl's sha256."""
    buffer = io.BytesIO()
    stamped: dict[str, Any] = {**arrays, _STAMP: np.asarray(training_sha256(package))}
    np.savez_compressed(buffer, **stamped)
    target = Path(str(resources.files(package).joinpath(WEIGHTS_FILE)))
    target.write_bytes(buffer.getvalue())
    return target
