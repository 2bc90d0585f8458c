"""What to train: the shape and optimisation recipe of a small Mamba.

Kept apart from `train.py` (which imports torch and transformers) so that recipes can be
read and hashed in milliseconds, e.g. to decide whether a cached demo model is current.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    """Model shape and optimisation recipe.

    Training runs `max_steps` steps when set; otherwise for `time_budget_s` seconds, and
    on past the budget until `min_steps` steps are done (a floor for busy machines).
    """

    hidden_size: int = 256
    num_layers: int = 4
    state_size: int = 16
    seq_len: int = 128
    batch_size: int = 16
    learning_rate: float = 4e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 20
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    time_budget_s: float = 120.0
    max_steps: int | None = None
    min_steps: int = 0
    seed: int = 0
    threads: int | None = None  # None: all cores or one, whichever steps faster (see train)
