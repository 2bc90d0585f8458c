"""One measured outcome of a validation step, as the registry records it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EvaluationResult:
    """A metric measured by a suite, with its gate when the suite has one.

    `threshold` None: the metric is recorded, not gated, and `passed` is None too.
    `tool_versions` names what produced the number (e.g. {"llama-cpp-python": "0.3.16"}),
    so a result can be reproduced or discounted when a tool changes.
    """

    suite: str
    metric: str
    value: float
    threshold: float | None
    passed: bool | None
    tool_versions: dict[str, str] = field(default_factory=dict)
