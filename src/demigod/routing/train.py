"""Trains the request classifier on the shipped training split and writes its weights
beside it (data/model.npz), stamped with the training file's sha256.

Run after changing data/train.jsonl: `python -m demigod.routing.train`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from demigod.routing.classifier import WEIGHTS_FILE, LinearModel, load_split, train_sha256


def main() -> None:
    model = LinearModel.train(load_split("train"))
    target = Path(str(resources.files("demigod.routing.data").joinpath(WEIGHTS_FILE)))
    target.write_bytes(model.to_bytes(train_sha256()))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
