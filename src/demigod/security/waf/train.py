"""Trains the screen's model on the shipped training split and writes its weights beside
it (data/model.npz), stamped with the training file's sha256.

Run after changing data/train.jsonl: `python -m demigod.security.waf.train`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from demigod.security.waf.model import WEIGHTS_FILE, InjectionModel, load_split, train_sha256


def main() -> None:
    model = InjectionModel.train(load_split("train"))
    target = Path(str(resources.files("demigod.security.waf.data").joinpath(WEIGHTS_FILE)))
    target.write_bytes(model.to_bytes(train_sha256()))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
