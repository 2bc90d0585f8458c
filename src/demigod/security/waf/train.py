"""Trains the screen's model on the shipped training split and writes its weights beside
it (data/model.npz), stamped with the training file's sha256.

Run after changing data/train.jsonl: `python -m demigod.security.waf.train`.
"""

from __future__ import annotations

from demigod import shipped_weights
from demigod.security.waf.model import DATA_PACKAGE, InjectionModel, load_split


def main() -> None:
    model = InjectionModel.train(load_split("train"))
    print(f"wrote {shipped_weights.write(DATA_PACKAGE, model.to_arrays())}")


if __name__ == "__main__":
    main()
